"""Patient identities, field encryption, signed records, retention and rights."""
