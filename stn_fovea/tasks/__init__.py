"""Tasks (objectives): the loss a model trains on and the metrics it is scored with (``conf/task``)."""
