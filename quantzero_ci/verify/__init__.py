"""Verify what ships: PCS, accuracy and latency from one pass of each model over the evaluation
inputs (`consistency`), the consistency measures beyond top-1 (`measures`), and batch-1 latency
(`latency`).
"""
