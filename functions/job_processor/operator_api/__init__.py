"""The processor Lambda's own code, beside its ``app.py`` (the queue work is ``jobs_core``'s).

One function, three kinds of events (told apart by their shape, see ``events.event_kind``):

- the EventBridge schedule (every minute) and the enqueuers' kick
  (``{"source": "escrow-jobs.kick"}``): drain within the invocation's budget, then fan
  out (invoke itself asynchronously, up to ``JOB_PROCESSOR_MAX_FANOUT`` times) when the
  drain ran out of budget with a backlog left;
- a fan-out event (``{"source": "escrow-jobs.fanout"}``): drain, never fan out again (so
  processors cannot multiply: only the schedule and kicks start new ones);
- HTTP API v2 requests for ``/api/jobs/process``: the operator API (``routes``).

Modules: ``events`` (which event, and the drain with its fan-out), ``routes`` (the
operator API), ``models`` (its request bodies), ``auth`` (the bearer token), ``wiring``
(the queue, processor and clients, built from the environment on first use).
"""
