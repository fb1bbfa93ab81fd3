"""The deployed pipeline on an embedded AWS (moto server on loopback), for ``codewatch demo`` and the e2e tests.

- ``server``: start and stop moto server on a free loopback port.
- ``provision``: create what the synthesized template declares, through the service APIs.
- ``runtime``: run the real handlers as Lambda's event-source mappings would.
"""
