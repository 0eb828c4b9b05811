"""The escrow domain behind the escrow API Lambda (``app.py`` beside this folder).

``api`` holds the routes; ``service`` the operations, which lean on ``idempotency``
(Idempotency-Key records), ``transitions`` (state moves, with Stripe where money
moves), ``history`` (the audit rows) and ``dispatch`` (enqueueing the side effects).
``store`` and ``items`` are the DynamoDB table; ``stripe_gateway`` is Stripe.
"""
