"""Quantization of bundle parts and accuracy drift against the reference (issue: quantization)."""
