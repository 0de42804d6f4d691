"""Fleets: many models, one certificate.

`discover` finds the members (every `.quantzero.yml`, or those a `quantzero-fleet.yml` names),
`members` loads and checks member certificates, `totals` is the fleet Monte-Carlo (pure),
`certificate` builds and signs the fleet certificate, `verify` checks one, `render` writes the
comment and the PDF, `run` gates a fleet in one process, and `cli` is the `quantzero fleet` group.
"""

FLEET_SCHEMA = "quantzero-ci/fleet/v1"
FLEET_JSON = "fleet.json"
FLEET_PDF = "fleet.pdf"
FLEET_COMMENT = "fleet-comment.md"
FLEET_FILE = "quantzero-fleet.yml"
DEFAULT_OUTPUT_DIR = "quantzero-fleet"
