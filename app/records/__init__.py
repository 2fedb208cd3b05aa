"""Medical records: encounters (notes, vitals, ICD-10 diagnoses, prescriptions), allergies, break-glass
access. Models in `models.py`, the rules in `services.py` and `access.py`, ICD-10 search in `icd10.py`."""
