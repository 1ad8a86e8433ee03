"""bbconnect: government letters to MijnOverheid Berichtenbox, with paper as the fallback."""
import logging

# signxml's DEBUG lines print the canonicalized document it signs or verifies: a WUS request holds
# BSNs. Whatever level an operator gives the root logger, signxml says no more than INFO.
logging.getLogger("signxml").setLevel(logging.INFO)
