"""torch helpers shared by the torch adapters (Lightning, Hugging Face).

Copy buffers and module lookup; imported only by adapters that already imported torch.
"""
