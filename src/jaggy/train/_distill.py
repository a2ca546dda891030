"""Remedies without labels: fine-tune a remedied model (student) to match the original model's
(teacher's) soft outputs on unlabelled images (Hinton, Vinyals & Dean, 2015).

Loss: T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), averaged over the batch, with T the
temperature (the T^2 keeps gradient sizes comparable across temperatures). The teacher runs
in eval mode without gradients; the student's normalisation layers stay frozen (a remedy
keeps the norms' place, and their running statistics are the teacher's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ._loop import Schedule, fit


def distill_loss(temperature: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """loss(student_logits, teacher_logits) as in the module docstring."""

    def loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        log_p_student = F.log_softmax(student / temperature, dim=1)
        log_p_teacher = F.log_softmax(teacher / temperature, dim=1)
        kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
        return kl * temperature**2

    return loss


@torch.inference_mode()
def mean_kl(
    teacher: nn.Module,
    student: nn.Module,
    images: torch.Tensor,
    *,
    temperature: float = 1.0,
    batch_size: int = 256,
) -> float:
    """Mean KL(teacher || student) of the softmax outputs at `temperature` over `images`
    (nats per image)."""
    teacher.eval()
    student.eval()
    device = next(student.parameters()).device
    total, n = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        log_t = F.log_softmax(teacher(x) / temperature, dim=1)
        log_s = F.log_softmax(student(x) / temperature, dim=1)
        total += float((log_t.exp() * (log_t - log_s)).sum())
        n += len(x)
    return total / max(n, 1)


def distill(
    student: nn.Module,
    teacher: nn.Module,
    epoch_images: Callable[[int], Iterable[torch.Tensor]],
    schedule: Schedule,
    steps_per_epoch: int,
    *,
    temperature: float,
    device: torch.device,
    progress: bool = False,
) -> list[dict]:
    """Fit `student` to `teacher`'s soft outputs on the unlabelled images that
    epoch_images(epoch) yields, batch by batch. Returns the per-epoch history."""
    teacher.to(device).eval()

    def batches(epoch: int):
        for images in epoch_images(epoch):
            with torch.no_grad():  # not inference mode: the loss keeps targets for backward
                targets = teacher(images.to(device))
            yield images, targets

    return fit(
        student,
        batches,
        distill_loss(temperature),
        schedule,
        steps_per_epoch,
        device=device,
        train_norm=False,
        progress=progress,
        desc="distill",
    )


def distill_on_items(
    student: nn.Module,
    teacher: nn.Module,
    items: list,
    preprocessing,
    *,
    epochs: int,
    temperature: float,
    lr: float = 0.001,
    batch_size: int = 32,
    seed: int = 0,
    device: torch.device,
    progress: bool = False,
) -> dict:
    """Distil `student` to `teacher` on the standard inputs of image `items` (unlabelled;
    undecodable images are skipped). Returns what `compare.json` records: epochs,
    temperature, the history and the mean KL(teacher || student) on those images before and
    after."""
    from ._data import eval_transform, load_inputs, usable_items
    from ._loop import seed_everything

    usable, skipped = usable_items(list(items))
    inputs = load_inputs(usable, eval_transform(preprocessing))
    before = mean_kl(teacher, student, inputs)
    generator = seed_everything(seed)

    def epoch_images(epoch: int):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch_size):
            yield inputs[order[start : start + batch_size]]

    steps = (len(inputs) + batch_size - 1) // batch_size
    history = distill(
        student,
        teacher,
        epoch_images,
        Schedule(epochs=epochs, lr=lr, momentum=0.9, weight_decay=0.0, max_grad_norm=1.0),
        steps,
        temperature=temperature,
        device=device,
        progress=progress,
    )
    return {
        "epochs": epochs,
        "temperature": temperature,
        "lr": lr,
        "images": len(usable),
        "skipped": skipped,
        "history": history,
        "kl_before": before,
        "kl_after": mean_kl(teacher, student, inputs),
        "kl_what": "mean KL(base || variant) at T = 1 over the distillation images' standard "
        "inputs (nats)",
    }
