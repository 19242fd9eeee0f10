"""Accuracy measurement, torch-free: metrics, thresholds, probes of bundle variants, the
expected-outputs file, reports. It uses only the runtime, so a device runs it as shipped."""
