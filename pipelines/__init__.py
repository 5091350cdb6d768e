"""The nightly run as plain functions (extract, validate, match, publish) and the command line."""
