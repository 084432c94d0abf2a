"""The offline stack: Azurite, a local managed-identity endpoint and a Speech emulator.

It lets the production code path (managed identity, keyless storage, batch jobs, short
audio) run unchanged on one machine with no Azure subscription. Never deployed.
"""
