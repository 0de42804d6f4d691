"""Load: the model (safe by default) and its calibration and evaluation data.

`loading` reads models and datasets, `hfload` Hugging Face folders offline, `namedinputs` packs
several named inputs into one tensor, `modeloutput` picks the logits from a model's output,
`npybudget` bounds NumPy files before allocating, and `preflight` checks the data and the
signing key before any work.
"""
