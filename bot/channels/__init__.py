"""Channel adapters: turn platform traffic into Inbound, deliver the engine's replies."""
