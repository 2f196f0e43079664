"""Device adapters (measure latency/energy of exported models) and exporters."""
