"""Target devices: profiles, detection, engine builds and the device accuracy check."""
