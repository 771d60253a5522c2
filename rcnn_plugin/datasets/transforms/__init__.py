from .wrappers import BoxProposalBroadcaster

__all__ = ['BoxProposalBroadcaster']
