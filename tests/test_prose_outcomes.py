"""No page states what a run did in static prose: tools/prose_outcomes.py lists none but the
sentences a reader reviewed and kept (methods, definitions, questions: not results)."""

import textwrap

from prose_outcomes import ROOT, outcome_sentences

# page -> the beginnings of the sentences the tool lists that were read and kept, and why
REVIEWED = {
    "01_two_parts": [
        "Like every comparison in the book",  # what any difference must beat: a rule
        "That is a hypothesis, and the next two pages",  # what the next pages test
    ],
    "02_schedules": [
        "`ReduceLROnPlateau` multiplies the rate",  # PyTorch's rule
        "Whether a schedule beat the constant rate is a question",  # how to compare
        "Rankings between close runs move with the seeds",  # how to read the intervals
        "No schedule wins everywhere",  # the chapter's advice, introduced as such
    ],
    "03c_optimizers_since": [
        "Every claim of the kind",  # about the protocol
        "(That is what happened in a first version of this page",  # how the grid was set
        "`best_rates` takes each optimizer's rate",  # what a function does
        "What the runs support about the two rankings",  # introduces a finding()
        "`reached` counts the seeds",  # what a column means
    ],
    "03d_preconditioning": [
        "The optimizer that won the external tuning track"
    ],  # AlgoPerf's result
    "04_optuna": [
        "Optuna has no state of its own for it",  # how Optuna treats a pruned trial
        "On the left, each trial's validation accuracy",  # what the figure draws
        "Pruned trials with `trial.report`",  # what the page did
    ],
    "04b_search_since": [
        "Its interval says whether the mean difference",  # how to read the interval
        "So a pruner is measured by two numbers",  # the measure
        "Each study's result is two numbers",  # the measure
        "When a trial is worse than the best on all",  # the test's arithmetic
        "The book uses a PostgreSQL database there",  # how the storage works
    ],
    "05_pictures": ["The last column says whether"],  # what "not reached" means
    "06_ensembles": [
        "Can one training run give several models",  # the page's question
        "Which of the two wins in these runs",  # introduces the comparison
    ],
    "exercises/ex2_ex3_batch_and_depth": [
        "That is how such a run can end at chance",  # a mechanism, after the glued losses
        "That is why a deep $\\tanh$ network can stay at chance",  # after the glued measurements
    ],
    "exercises/ex4_ex5_rnn": [
        "Does it help the RNN or hurt it?",  # the exercise's question
        "`run` stops a seed whose training loss",  # what run does
        "Made the gradients explode",  # what the page did
    ],
}


def test_no_page_states_an_outcome_in_static_prose_but_the_reviewed_sentences():
    unreviewed = []
    for path in sorted((ROOT / "book").rglob("*.py")):
        page = path.relative_to(ROOT / "book").with_suffix("").as_posix()
        kept = REVIEWED.get(page, [])
        for number, sentence in outcome_sentences(path):
            if not any(sentence.startswith(start) for start in kept):
                unreviewed.append(f"{page} cell {number}: {sentence}")
    assert not unreviewed, (
        "sentences that state a run's outcome without glue: glue the numbers from the run, "
        "move the finding into idlmam.notebook.finding, or, if it states no result (a method, "
        "a definition), add its beginning to REVIEWED with the reason:\n" + "\n".join(unreviewed)
    )


def test_the_tool_lists_a_typed_outcome_and_not_a_glued_or_cited_one(tmp_path):
    page = tmp_path / "page.py"
    page.write_text(
        textwrap.dedent(
            """\
            # %% [markdown]
            # Momentum ended above plain SGD on every seed.
            # Momentum ended {glue:text}`gap` above plain SGD.
            # Nesterov beats momentum on convex problems {cite:p}`nesterov1983method`.
            # The learning rate sets the size of a step.
            #
            # ```{note}
            # In a box, AdamW won by two points.
            # ```
            """
        )
    )
    assert [s for _, s in outcome_sentences(page)] == [
        "Momentum ended above plain SGD on every seed.",
        "In a box, AdamW won by two points.",
    ]
