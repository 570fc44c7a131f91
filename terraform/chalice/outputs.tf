# Outputs of the Chalice package module beyond the two the package writes itself
# (EndpointURL, RestAPIId in chalice.tf.json). They name functions of the generated
# template, so they hold only once `branchenv deploy` has packaged app.py (see README.md).

# app.py's `@app.lambda_function(name="waker")`: Chalice's resource is named after it.
output "waker_function_arn" {
  description = "ARN of the waker function: the Lambda target of every load balancer's waker target group (terraform/waker.tf)."
  value       = aws_lambda_function.waker.arn
}
