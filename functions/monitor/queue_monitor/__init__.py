"""The monitor Lambda's own code, beside its ``app.py``: every minute, read the queue
statistics once (``source``) and publish them as metrics (``metrics``).

A Redis failure (``BackendError``) publishes ``MonitorRedisErrors=1``, logs an error,
and is raised again: the invocation did not do its job, so Lambda should count it
(its ``Errors`` metric, a failure destination if one is added). The depth metrics are
then missing for that minute, which is what the "monitor metrics missing" alarm
watches. The template sets this function's asynchronous retries to 0: the next
scheduled run, a minute later, is the retry.
"""
