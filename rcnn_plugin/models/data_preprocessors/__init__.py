from .channels_last import ChannelsLastDetDataPreprocessor

__all__ = ['ChannelsLastDetDataPreprocessor']
