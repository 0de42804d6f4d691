"""Certify and decide: the report (`report`), the gate's checks (`checks`) and decision (`decide`),
signatures (`signing`), the atomic output set (`outputset`), and checking a certificate later:
`certchecks` (what single and fleet checks share), `certificate_check` (`quantzero verify`),
`certfields` (what a certificate must hold), `modelcard` (Hugging Face metadata).

The PDF lives in `quantzero_ci.certificate` and the markdown in `quantzero_ci.render`.
"""
