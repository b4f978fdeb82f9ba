"""Stand-ins for the world outside the product, kept apart from the business rules.

`demo` seeds the demo county alliance that `make run` shows, `scale_data` builds the tertiary-hospital
dataset the benchmarks run on, and `fake_his` is a small real HTTP server playing the hospital's HIS.
None of them decides anything about stock: they call the services as a user or device would.
"""
