"""The Compose file of the network (``compose.yaml``) and the code that writes it."""
