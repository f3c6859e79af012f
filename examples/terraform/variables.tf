variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "metrics" {
  description = "The observer's metric profile: lean (the default) or full."
  type        = string
  default     = "lean"
}
