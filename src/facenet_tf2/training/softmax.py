"""train_softmax.py's part of a training run: the classifier head, the centres and the loss.

The loss is the original's total: cross entropy of the `Logits` head (or an ArcFace/CosFace
margin head) + prelogits_norm_loss_factor * mean p-norm of the prelogits + center_loss_factor *
center loss + weight decay (added by the core). The centres are always kept and updated, as the
original did whatever the factor.
"""
import tensorflow as tf

from facenet_tf2.training import losses


class CenterLossModule(losses.CenterLoss):
    """The centres, which the optimizer steps as well (the original gave it every global variable)."""

    def optimized_variables(self):
        return [self.centers]


def softmax_modules(nrof_classes, embedding_size, weight_decay, center_loss_alfa, loss='softmax', margin_s=None,
                    margin_m=None):
    """Builders of the modules a softmax run trains beside the network, for Trainer(modules=...)."""
    return {
        'Logits': lambda: losses.make_classifier_head(loss, nrof_classes, weight_decay, margin_s, margin_m),
        'centers': lambda: CenterLossModule(nrof_classes, embedding_size, center_loss_alfa, name='center_loss'),
    }


PRELOGITS_HIST_BINS = 1000


def softmax_loss(prelogits_norm_p=1.0, prelogits_norm_loss_factor=0.0, center_loss_factor=0.0,
                 prelogits_hist_max=10.0):
    """loss_fn for Trainer.train_step, on inputs (images, labels[, stream positions]). Besides the
    loss terms its metrics hold the original's `prelogits_hist` (counts of min(|prelogits|, max) in
    1000 bins over [0, prelogits_hist_max]) and, given positions, where the input stream is."""

    def loss_fn(trainer, inputs, global_batch_size):
        images, labels = inputs[0], inputs[1]
        head, centers = trainer.modules['Logits'], trainer.modules['centers']
        prelogits = tf.cast(trainer.network(images, training=True), tf.float32)
        logits = head(prelogits, labels)
        plain_logits = logits if isinstance(head, losses.SoftmaxHead) else head(prelogits)
        cross_entropy = losses.softmax_cross_entropy(labels, logits, global_batch_size)
        norm = losses.prelogits_norm(prelogits, prelogits_norm_p, global_batch_size)
        center_loss, delta = centers(prelogits, labels, global_batch_size=global_batch_size)
        loss = cross_entropy + prelogits_norm_loss_factor * norm + center_loss_factor * center_loss

        def update_centers():
            centers.apply_update(tf.distribute.get_replica_context().all_reduce('sum', delta))

        metrics = {
            'xent_loss': cross_entropy,
            'prelogits_norm': norm,
            'center_loss': center_loss,
            'accuracy': losses.accuracy(labels, plain_logits, global_batch_size),
            'prelogits_hist': tf.histogram_fixed_width(tf.minimum(tf.abs(prelogits), prelogits_hist_max),
                                                       [0.0, prelogits_hist_max], nbins=PRELOGITS_HIST_BINS),
            'outputs': {'prelogits': prelogits, 'logits': logits},
        }
        if len(inputs) > 2:
            metrics['position_max'] = tf.reduce_max(inputs[2]) + 1
        return loss, metrics, [update_centers]

    return loss_fn


def softmax_validation(trainer, prelogits_norm_p=1.0, prelogits_norm_loss_factor=0.0, center_loss_factor=0.0):
    """A tf.function (images, labels) -> {loss, xent_loss, accuracy} in inference mode, as the
    original's validation pass (same terms as training, nothing updated)."""
    head, centers = trainer.modules['Logits'], trainer.modules['centers']

    @tf.function(reduce_retracing=True)
    def validate(images, labels):
        prelogits = tf.cast(trainer.network(images, training=False), tf.float32)
        logits = head(prelogits, labels)
        plain_logits = logits if isinstance(head, losses.SoftmaxHead) else head(prelogits)
        cross_entropy = losses.softmax_cross_entropy(labels, logits)
        center_loss, _ = centers(prelogits, labels)
        regularization = [tf.cast(term, tf.float32) for module in trainer.trained_modules() for term in module.losses]
        loss = (cross_entropy + prelogits_norm_loss_factor * losses.prelogits_norm(prelogits, prelogits_norm_p)
                + center_loss_factor * center_loss + (tf.add_n(regularization) if regularization else 0.0))
        return {'loss': loss, 'xent_loss': cross_entropy, 'accuracy': losses.accuracy(labels, plain_logits)}

    return validate
