"""Clinical cases (Hub Santé model): opening rules, timeline, triage tick, decisions.

One word per concept: a *case* is the clinical episode; an *incident* is a security or
technical event (:mod:`console.records`).
"""
