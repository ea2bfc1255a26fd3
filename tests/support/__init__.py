"""Helpers shared by several test modules (not collected: no file here is named test_*).

- ``accounts``: the account-service environment (``make_env``, ``Env``, ``FakeClock``,
  ``PW``, ``FAST``, ``OP``).
- ``patients``: a sample patient identity (``TRAITS``, ``INS``, ``BODY``).
- ``strategies``: hypothesis strategies for every message model, and ``json_values``.
- ``tampering``: editing an audit trail's file directly, and the verifier's verdict.
- ``brokers``: real Mosquitto brokers on loopback ports, plain or as shipped.
"""
