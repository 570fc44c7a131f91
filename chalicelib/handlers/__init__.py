"""What the Lambda handlers of app.py call: the webhook intake, the queue worker, the AWS event
translation, the reaper and the QA dashboard. One entry point each; they depend on the
engine and the domain, never the other way round.
"""
