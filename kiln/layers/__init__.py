"""kiln layers: each one a ``torch.nn.Module`` with Keras's name, arguments and defaults."""

from kiln.layers.layer import Layer
from kiln.layers.symbolic import Input, KerasTensor
from kiln.layers.input_layer import InputLayer
from kiln.layers.activation import Activation
from kiln.layers.activations_layers import Softmax, ReLU, LeakyReLU, ELU, PReLU, Identity
from kiln.layers.attention import MultiHeadAttention, Attention
from kiln.layers.audio_augmentation import SpecAugment, RandomTimeShift
from kiln.layers.conv import Conv1D, Conv2D, Conv3D, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from kiln.layers.depthwise_conv import DepthwiseConv2D, SeparableConv2D
from kiln.layers.dense import Dense
from kiln.layers.dropout import Dropout, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from kiln.layers.embedding import Embedding
from kiln.layers.image_augmentation import (RandomFlip, RandomRotation, RandomTranslation, RandomZoom, RandomCrop,
                                           RandomContrast, RandomBrightness)
from kiln.layers.lambda_layer import Lambda
from kiln.layers.masking import Masking
from kiln.layers.merge import Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot
from kiln.layers.merge import add, subtract, multiply, average, maximum, minimum, concatenate, dot
from kiln.layers.noise import GaussianNoise, GaussianDropout, ActivityRegularization
from kiln.layers.normalization import BatchNormalization, LayerNormalization
from kiln.layers.normalization_preprocessing import Normalization
from kiln.layers.padding import ZeroPadding1D, ZeroPadding2D, Cropping1D, Cropping2D
from kiln.layers.pooling import MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
from kiln.layers.recurrent import SimpleRNN, LSTM, GRU, Bidirectional
from kiln.layers.repeat_vector import RepeatVector
from kiln.layers.rescaling import Rescaling
from kiln.layers.reshape import Flatten, Reshape, Permute
from kiln.layers.text_augmentation import TokenDropout
from kiln.layers.time_distributed import TimeDistributed
from kiln.layers.upsampling import UpSampling1D, UpSampling2D

__all__ = [
    'Layer',
    'Input',
    'InputLayer',
    'KerasTensor',
    'Activation',
    'Softmax',
    'ReLU',
    'LeakyReLU',
    'ELU',
    'PReLU',
    'Identity',
    'MultiHeadAttention',
    'Attention',
    'Conv1D',
    'Conv2D',
    'Conv3D',
    'Conv1DTranspose',
    'Conv2DTranspose',
    'Conv3DTranspose',
    'DepthwiseConv2D',
    'SeparableConv2D',
    'Dense',
    'Dropout',
    'SpatialDropout1D',
    'SpatialDropout2D',
    'SpatialDropout3D',
    'Embedding',
    'Masking',
    'Lambda',
    'Add',
    'Subtract',
    'Multiply',
    'Average',
    'Maximum',
    'Minimum',
    'Concatenate',
    'Dot',
    'add',
    'subtract',
    'multiply',
    'average',
    'maximum',
    'minimum',
    'concatenate',
    'dot',
    'GaussianNoise',
    'GaussianDropout',
    'ActivityRegularization',
    'BatchNormalization',
    'LayerNormalization',
    'Normalization',
    'ZeroPadding1D',
    'ZeroPadding2D',
    'Cropping1D',
    'Cropping2D',
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
    'RepeatVector',
    'Rescaling',
    'Flatten',
    'Reshape',
    'Permute',
    'TimeDistributed',
    'UpSampling1D',
    'UpSampling2D',
    'RandomFlip',
    'RandomRotation',
    'RandomTranslation',
    'RandomZoom',
    'RandomCrop',
    'RandomContrast',
    'RandomBrightness',
    'SpecAugment',
    'RandomTimeShift',
    'TokenDropout',
]
