"""The local stack (``make dev``, ``python -m local_stack``): development only.

The whole system on one machine, with local stand-ins for what AWS and Stripe provide.
Nothing here ships to Lambda or to operators' machines; the tests import these
emulators, never the other way round.

- ``local_stack.stack``: the stack itself (``LocalStack``), started by ``__main__``;
- ``local_stack.http_gateway``: API Gateway's HTTP API (routes, JWT authorizer, Lambda Invoke);
- ``local_stack.lambda_runtime``: a handler invoked as the Lambda runtime would;
- ``local_stack.scheduler``: the EventBridge schedules (processor, monitor, outbox sweep);
- ``local_stack.redis_process``: a ``redis-server`` child on a free port;
- ``local_stack.emf``: CloudWatch's side of the Embedded Metric Format;
- ``local_stack.template``: what the stack reads from ``template.yaml``;
- ``local_stack.dev_tokens``: HS256 dev tokens in place of real JWTs;
- ``local_stack.stripe_server``: the local Stripe server and the events Stripe sends.
"""
