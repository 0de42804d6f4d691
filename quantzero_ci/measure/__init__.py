"""Profile: per-layer FLOPs, parameters and bytes moved (`profiler`), and `quantzero scan`
(`scan`: the profile and the FP32 carbon estimate, without compressing).
"""
