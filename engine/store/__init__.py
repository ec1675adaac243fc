"""The ledger, the vectors and what keeps them whole: journal, integrity, backup, export. Imports inference and the base modules only."""
