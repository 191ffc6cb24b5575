# The seed article's §5.2 program, with only the import changed
# (`import tensorflow as tf` -> `import kiln as keras`, and `tf.keras.` -> `keras.`).
import kiln as keras
import numpy as np

# 创建随机数据集
X = np.random.rand(100, 10)
y = np.random.rand(100, 1)

# 构建模型
model = keras.Sequential([
    keras.layers.Dense(64, activation='relu', input_shape=(10,)),
    keras.layers.Dense(1)
])

# 编译模型
model.compile(optimizer='adam',
              loss='mse',
              metrics=['mae'])

# 训练模型
model.fit(X, y, epochs=10, batch_size=32)

# 评估模型
loss, mae = model.evaluate(X, y)
print("MAE:", mae)

# 预测
predictions = model.predict(X)
print("Predictions:", predictions)
