"""kiln layers: each one a ``torch.nn.Module`` with Keras's name, arguments and defaults."""

from kiln.layers.layer import Layer
from kiln.layers.symbolic import Input, KerasTensor
from kiln.layers.activation import Activation
from kiln.layers.attention import MultiHeadAttention, Attention
from kiln.layers.conv import Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from kiln.layers.dense import Dense
from kiln.layers.dropout import Dropout, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from kiln.layers.embedding import Embedding
from kiln.layers.merge import Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate
from kiln.layers.normalization import BatchNormalization, LayerNormalization
from kiln.layers.pooling import MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
from kiln.layers.recurrent import SimpleRNN, LSTM, GRU, Bidirectional
from kiln.layers.rescaling import Rescaling
from kiln.layers.reshape import Flatten, Reshape, Permute

InputLayer = Input  # Keras's Sequential([InputLayer(shape=...)]) reads the same

__all__ = [
    'Layer',
    'Input',
    'InputLayer',
    'KerasTensor',
    'Activation',
    'MultiHeadAttention',
    'Attention',
    'Conv1D',
    'Conv2D',
    'Conv3D',
    'Conv1DTranspose',
    'Conv2DTranspose',
    'Conv3DTranspose',
    'Dense',
    'Dropout',
    'SpatialDropout1D',
    'SpatialDropout2D',
    'SpatialDropout3D',
    'Embedding',
    'Add',
    'Subtract',
    'Multiply',
    'Average',
    'Maximum',
    'Minimum',
    'Concatenate',
    'BatchNormalization',
    'LayerNormalization',
    'MaxPooling1D',
    'MaxPooling2D',
    'MaxPooling3D',
    'AveragePooling1D',
    'AveragePooling2D',
    'AveragePooling3D',
    'GlobalAveragePooling1D',
    'GlobalAveragePooling2D',
    'GlobalAveragePooling3D',
    'GlobalMaxPooling1D',
    'GlobalMaxPooling2D',
    'GlobalMaxPooling3D',
    'SimpleRNN',
    'LSTM',
    'GRU',
    'Bidirectional',
    'Rescaling',
    'Flatten',
    'Reshape',
    'Permute',
]
