"""The billing core: rules of money and time. Imports neither flask, stripe nor rq.

Every function takes the SQLAlchemy session and the day or time it acts on, and
flushes; the caller (a view, a job, a command) owns the transaction and commits.
"""
