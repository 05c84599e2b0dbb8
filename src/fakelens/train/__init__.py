"""Training: loop glue over the training engine, callbacks, and the parameter/FLOP budget check."""
