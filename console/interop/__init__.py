"""Exchange with the outside: Hub Santé RS-EDA/RS-BPV, FHIR R4 bundles, HL7 v2 IDCO."""
