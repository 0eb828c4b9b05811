"""The local stack (``make dev``, ``python -m local_stack``): development only.

The whole system on one machine, with local stand-ins for what AWS and Stripe provide.
Nothing here ships to Lambda or to operators' machines; the tests import these
emulators, never the other way round.

The stack (``stack.LocalStack``, run by ``__main__``) and its parts:

- ``config``: the options and the names the stack gives what it creates;
- ``aws``: an in-process moto server with the template's tables and the secrets;
- ``functions``: the template's functions, loaded, scheduled and invoked;
- ``local_routes``: the gateway's ``/_local/...`` routes (the buyer pays, a demo partner);
- ``banner``: what the developer reads once the stack is up.

The emulators, each usable on its own:

- ``http_gateway`` (with ``api_events``): API Gateway's HTTP API (routes, JWT authorizer,
  Lambda Invoke);
- ``lambda_runtime``: a handler invoked as the Lambda runtime would;
- ``scheduler``: the EventBridge schedules (processor, monitor, outbox sweep);
- ``redis_process``: a ``redis-server`` child on a free port;
- ``emf``: CloudWatch's side of the Embedded Metric Format;
- ``template``: what the stack reads from ``template.yaml``;
- ``dev_tokens``: HS256 dev tokens in place of real JWTs;
- ``stripe_server``: the local Stripe server and the events Stripe sends.
"""
