"""Speed and memory against the PyTorch reference and against llama.cpp alone (python -m bench)."""
