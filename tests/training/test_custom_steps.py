"""Keras 3's overridable steps (train_step / test_step / predict_step / compute_loss), each
checked against the same steps written by hand in torch."""

import numpy as np
import pytest
import torch

import kiln
from kiln import layers as L
from kiln.callbacks.callback import Callback
from kiln.errors import KilnTypeError, KilnValueError
from kiln.training.custom_step import uses_custom_steps

LR = 0.1


def data(n=48, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, 3).astype("float32")
    y = (x @ np.array([[1.0], [2.0], [-1.0]]) + 0.5).astype("float32")
    return x, y


def hand_sgd(kernel, bias, x, y, epochs, batch_size, extra_loss=None):
    """Plain torch: mini-batch SGD on MSE for y = x @ kernel + bias, in order (no shuffle).
    Returns the final weights and each epoch's mean of the batch losses."""
    kernel, bias = kernel.clone().requires_grad_(), bias.clone().requires_grad_()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    epoch_means = []
    for _ in range(epochs):
        losses = []
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            loss = ((xb @ kernel + bias - yb) ** 2).mean()
            if extra_loss is not None:
                loss = loss + extra_loss(kernel, xb)
            kernel.grad = bias.grad = None
            loss.backward()
            with torch.no_grad():
                kernel -= LR * kernel.grad
                bias -= LR * bias.grad
            losses.append(float(loss.detach()))
        epoch_means.append(float(np.mean(losses)))
    return kernel.detach(), bias.detach(), epoch_means


class TrackedRegressor(kiln.Model):
    """The guide's pattern: own train_step, Mean trackers declared in `metrics`."""

    def __init__(self):
        super().__init__()
        self.dense = L.Dense(1)
        self.loss_tracker = kiln.metrics.Mean(name="loss")
        self.mae_metric = kiln.metrics.MeanAbsoluteError(name="mae")
        self.seen = []

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, y = data
        self.seen.append(type(data))
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable = self.trainable_weights
        self.optimizer.apply([v.grad for v in trainable], trainable)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def built(model):
    model(torch.zeros(2, 3))
    return model.dense.kernel.detach().clone(), model.dense.bias.detach().clone()


def test_custom_train_step_gives_the_hand_written_weights_and_per_epoch_logs():
    x, y = data()
    torch.manual_seed(0)
    model = TrackedRegressor()
    kernel0, bias0 = built(model)
    model.compile(optimizer=kiln.optimizers.SGD(LR), loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    kernel, bias, epoch_means = hand_sgd(kernel0, bias0, x, y, epochs=3, batch_size=16)
    torch.testing.assert_close(model.dense.kernel.detach(), kernel, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.dense.bias.detach(), bias, rtol=1e-6, atol=1e-6)
    # Trackers are reset each epoch: each epoch's loss is that epoch's mean, not a running one.
    np.testing.assert_allclose(history.history["loss"], epoch_means, rtol=1e-5)
    assert set(history.history) == {"loss", "mae"}
    assert model.seen[0] is tuple  # the batch arrives packed as (x, y)
    assert uses_custom_steps(model) and not uses_custom_steps(kiln.Sequential([L.Dense(1)]))


def test_super_train_step_matches_the_default_fast_path():
    x, y = data()

    class Passthrough(kiln.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            return super().train_step(data)

    class Plain(Passthrough):
        train_step = kiln.Model.train_step

    results = []
    for cls in (Passthrough, Plain):
        torch.manual_seed(0)
        model = cls()
        model(torch.zeros(2, 3))  # built before fit: both loops then start from the same weights
        model.compile(optimizer=kiln.optimizers.SGD(LR), loss="mse", metrics=["mae"])
        history = model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        results.append((model.dense.kernel.detach().clone(), history.history))
    assert not uses_custom_steps(Plain()) and uses_custom_steps(Passthrough())
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-6, atol=1e-6)
    for key in ("loss", "mae"):
        np.testing.assert_allclose(results[0][1][key], results[1][1][key], rtol=1e-5)


def test_overridden_compute_loss_is_used_by_the_default_train_step():
    x, y = data()

    class Penalised(kiln.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(1)

        def call(self, x):
            return self.dense(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return super().compute_loss(x, y, y_pred, sample_weight) + 0.1 * (self.dense.kernel ** 2).sum()

    torch.manual_seed(0)
    model = Penalised()
    kernel0, bias0 = built(model)
    model.compile(optimizer=kiln.optimizers.SGD(LR), loss="mse")
    history = model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    kernel, _, means = hand_sgd(kernel0, bias0, x, y, 2, 16, extra_loss=lambda k, xb: 0.1 * (k ** 2).sum())
    torch.testing.assert_close(model.dense.kernel.detach(), kernel, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"], means, rtol=1e-5)


class ActivityPenalty(L.Layer):
    """A layer that adds 0.01 * mean(x ** 2) of its input with add_loss, as in Keras."""

    def call(self, x):
        self.add_loss(0.01 * (x ** 2).mean())
        return x


def test_add_loss_reaches_the_default_fit_and_compute_loss():
    x, y = data()
    torch.manual_seed(0)
    model = kiln.Sequential([ActivityPenalty(), L.Dense(1)])
    model(torch.zeros(2, 3))
    dense = model.layers[1]
    kernel0, bias0 = dense.kernel.detach().clone(), dense.bias.detach().clone()
    model.compile(optimizer=kiln.optimizers.SGD(LR), loss="mse")
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    # The penalty does not depend on the weights, so the weights follow plain MSE; the loss includes it.
    kernel, _, means = hand_sgd(kernel0, bias0, x, y, 2, 16, extra_loss=lambda k, xb: 0.01 * (xb ** 2).mean())
    torch.testing.assert_close(dense.kernel.detach(), kernel, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.history.history["loss"], means, rtol=1e-5)
    xb = torch.from_numpy(x[:4])
    model(xb)
    assert len(model.losses) == 1
    torch.testing.assert_close(model.losses[0], 0.01 * (xb ** 2).mean())
    model(xb)
    assert len(model.losses) == 1  # replaced at each call, not accumulated


class GAN(kiln.Model):
    """Keras's GAN pattern: two sub-models, two optimizers passed through a custom compile."""

    def __init__(self, generator, discriminator):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.d_loss_tracker = kiln.metrics.Mean(name="d_loss")
        self.g_loss_tracker = kiln.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def train_step(self, real):
        noise = torch.ones(real.shape[0], 2)
        fake = self.generator(noise)
        images = torch.cat([fake.detach(), real])
        labels = torch.cat([torch.ones(real.shape[0], 1), torch.zeros(real.shape[0], 1)])
        self.zero_grad()
        d_loss = self.loss_fn(labels, self.discriminator(images))
        d_loss.backward()
        d_weights = self.discriminator.trainable_weights
        self.d_optimizer.apply([w.grad for w in d_weights], d_weights)

        self.zero_grad()
        g_loss = self.loss_fn(torch.zeros(real.shape[0], 1), self.discriminator(self.generator(noise)))
        g_loss.backward()
        g_weights = self.generator.trainable_weights
        self.g_optimizer.apply([w.grad for w in g_weights], g_weights)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def test_gan_with_two_optimizers_matches_hand_written_steps_and_logs_reach_callbacks():
    torch.manual_seed(0)
    real = np.random.RandomState(1).randn(8, 3).astype("float32")
    gen = kiln.Sequential([L.Dense(3, input_shape=(2,))])
    disc = kiln.Sequential([L.Dense(1, activation="sigmoid", input_shape=(3,))])
    g_w = [p.detach().clone().requires_grad_() for p in gen.parameters()]
    d_w = [p.detach().clone().requires_grad_() for p in disc.parameters()]
    gan = GAN(gen, disc)
    mse = kiln.losses.MeanSquaredError()
    gan.compile(d_optimizer=kiln.optimizers.SGD(0.5), g_optimizer=kiln.optimizers.SGD(0.2), loss_fn=mse)

    class Recorder(Callback):
        batch_logs, epoch_logs = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.batch_logs.append(dict(logs))

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_logs.append(dict(logs))

    history = gan.fit(real, epochs=2, batch_size=4, shuffle=False, verbose=0, callbacks=[Recorder()])

    g = lambda z: z @ g_w[0] + g_w[1]  # noqa: E731
    d = lambda im: torch.sigmoid(im @ d_w[0] + d_w[1])  # noqa: E731
    d_losses, g_losses = [], []
    for _ in range(2):
        for i in range(0, 8, 4):
            rb = torch.from_numpy(real[i:i + 4])
            noise = torch.ones(4, 2)
            images = torch.cat([g(noise).detach(), rb])
            labels = torch.cat([torch.ones(4, 1), torch.zeros(4, 1)])
            d_loss = ((d(images) - labels) ** 2).mean()
            grads = torch.autograd.grad(d_loss, d_w)
            with torch.no_grad():
                for w, gr in zip(d_w, grads):
                    w -= 0.5 * gr
            g_loss = ((d(g(noise)) - 0.0) ** 2).mean()
            grads = torch.autograd.grad(g_loss, g_w)
            with torch.no_grad():
                for w, gr in zip(g_w, grads):
                    w -= 0.2 * gr
            d_losses.append(float(d_loss.detach()))
            g_losses.append(float(g_loss.detach()))
    for mine, ref in zip(list(gen.parameters()) + list(disc.parameters()), g_w + d_w):
        torch.testing.assert_close(mine.detach(), ref.detach(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history.history["d_loss"], [np.mean(d_losses[:2]), np.mean(d_losses[2:])], rtol=1e-5)
    np.testing.assert_allclose(history.history["g_loss"], [np.mean(g_losses[:2]), np.mean(g_losses[2:])], rtol=1e-5)
    assert len(Recorder.batch_logs) == 4 and set(Recorder.batch_logs[0]) == {"d_loss", "g_loss"}
    assert Recorder.epoch_logs[-1] == {"d_loss": history.history["d_loss"][-1],
                                       "g_loss": history.history["g_loss"][-1]}


def test_custom_test_step_and_predict_step():
    x, y = data(n=20)

    class Custom(kiln.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(1)
            self.tracker = kiln.metrics.Mean(name="abs_error")

        def call(self, x):
            return self.dense(x)

        @property
        def metrics(self):
            return [self.tracker]

        def test_step(self, data):
            x, y = data
            self.tracker.update_state((self(x) - y).abs())
            return {"abs_error": self.tracker.result()}

        def predict_step(self, data):
            return self(data) * 2

    torch.manual_seed(0)
    model = Custom()
    model.compile(optimizer="sgd", loss="mse")
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    with torch.no_grad():
        expected = float((model(torch.from_numpy(x)) - torch.from_numpy(y)).abs().mean())
    assert logs == {"abs_error": pytest.approx(expected, rel=1e-6)}
    # Reset between evaluations: the same data gives the same value again.
    assert model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True) == logs
    with torch.no_grad():
        np.testing.assert_allclose(model.predict(x, verbose=0), model(torch.from_numpy(x)).numpy() * 2, rtol=1e-6)
    history = model.fit(x, y, epochs=1, batch_size=8, validation_data=(x, y), verbose=0)
    # Validation runs test_step too: its logs are the evaluation of the trained model.
    after = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert history.history["val_abs_error"] == [pytest.approx(after["abs_error"], rel=1e-6)]


def test_train_step_returning_a_non_dict_is_a_kiln_error_naming_it():
    class Bad(TrackedRegressor):
        def train_step(self, data):
            super().train_step(data)
            return 1.0

    model = Bad()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(n=8)
    with pytest.raises(KilnTypeError, match=r"Bad.train_step\(\) must return a dict of logs"):
        model.fit(x, y, verbose=0)


def test_a_tracker_used_but_not_declared_in_metrics_is_a_kiln_error():
    class Undeclared(TrackedRegressor):
        @property
        def metrics(self):
            return [self.loss_tracker]  # mae_metric is updated but missing here

    model = Undeclared()
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(n=8)
    with pytest.raises(KilnValueError, match=r"(?s)`self.mae_metric`.*does not list it.*def metrics"):
        model.fit(x, y, verbose=0)


def test_optimizer_apply_updates_only_the_listed_variables():
    a = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    opt = kiln.optimizers.SGD(0.5)
    opt.build([a, b])
    b.grad = torch.ones(2)
    opt.apply([torch.full((2,), 2.0)], [a])
    torch.testing.assert_close(a.detach(), torch.zeros(2))
    torch.testing.assert_close(b.detach(), torch.ones(2))
    torch.testing.assert_close(b.grad, torch.ones(2))  # the other variable's gradient is left as it was
    with pytest.raises(KilnValueError, match="received 1 gradients for 2 variables"):
        opt.apply([torch.ones(2)], [a, b])
    with pytest.raises(KilnValueError, match="was not built for"):
        opt.apply([torch.ones(3)], [torch.nn.Parameter(torch.ones(3))])
