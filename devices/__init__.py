"""Device CI: the accuracy check on real hardware, TensorRT engine builds, and their CLI.

Detection, profiles and the plan an app needs live in runtime/placement."""
