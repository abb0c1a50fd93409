"""A one-paragraph plain-English narrative of a scenario, for when config gives no description.

Why: the report's reader (an architect, a new engineer) reads the paragraph before the diagram; the reference page
opens every scenario with one. A generated one says what the steps say, in order, and nothing they do not:

- consecutive steps from the same element share one sentence ("The LMS reads MySQL (edxapp) and MongoDB …");
  consecutive reads (or writes) merge their objects;
- a step into a queue and the queue's step out of it read as one clause ("then queues X on the Celery queue, which
  the CMS worker runs"); what the consumer does next starts a new sentence ("The CMS worker then …");
- the verb follows the target's kind: a database is read or written (from the label's leading verb, else "uses"),
  a queue is queued on, anything else is called (sync) or sent to (async); a step seen in only some runs says
  "in some runs";
- a scheduled scenario opens with its cadence ("On a schedule (every 30 min), …");
- after six sentences the rest is counted, not told: the step table has it all.

Deterministic: it depends on the scenario's steps (already in model order) and the elements' names only. No I/O;
plain text out (the templates escape it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tracegen.model import Element, FlowModel, Scenario, Step

__all__ = ["describe_scenario"]

_MAX_SENTENCES = 6
_READ = re.compile(r"^(select|get|mget|hget|hgetall|find|findone|aggregate|count|read|query|scan|search|list|head|"
                   r"exists|fetch|describe)\b", re.IGNORECASE)
_WRITE = re.compile(r"^(insert|update|delete|upsert|replace|put|set|hset|mset|del|incr|write|save|create|drop|"
                    r"alter|copy|upload|post|index|bulk|merge|truncate)\b", re.IGNORECASE)


@dataclass
class _Clause:
    """One verb phrase: ``verb`` + ``objects`` (merged when consecutive clauses share a mergeable verb) + ``tail``."""

    verb: str
    objects: list[str]
    tail: str = ""
    mergeable: bool = False
    enqueue: str = ""  # the queue's element id when this clause puts a message on a queue

    def text(self) -> str:
        return f"{self.verb} {_join(self.objects)}{self.tail}".strip()


@dataclass
class _Sentence:
    subject_id: str
    subject: str
    clauses: list[_Clause] = field(default_factory=list)
    closed: bool = False  # a queue hop ended it: the next step starts a new sentence

    def text(self) -> str:
        parts = [c.text() for c in self.clauses]
        if len(parts) == 1:
            body = parts[0]
        elif self.clauses[-1].enqueue:
            body = ", ".join(parts[:-1]) + ", then " + parts[-1]
        else:
            body = ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"{self.subject} {body}."


def describe_scenario(scenario: Scenario, model: FlowModel) -> str:
    """One paragraph describing ``scenario``'s steps in plain English, or "" when it has no steps."""
    elements = {element.id: element for element in model.elements}
    sentences: list[_Sentence] = []
    mentioned: set[str] = set()
    then_for: str | None = None  # the consumer whose next sentence reads "… then …"
    for step in scenario.steps:
        source = elements.get(step.source)
        target = elements.get(step.target)
        if source is not None and source.kind == "queue":
            consumer = _name(target, step.target, mentioned)
            last = sentences[-1] if sentences else None
            if last is not None and last.clauses and last.clauses[-1].enqueue == step.source:
                last.clauses[-1].tail += f", which {consumer} runs"
                last.closed = True
            else:
                what = f" {step.label}" if step.label else ""
                queue = _name(source, step.source, mentioned)
                sentences.append(_Sentence(step.target, _capital(consumer), [_Clause(f"runs{what} from", [queue])],
                                           closed=True))
            mentioned.update((step.source, step.target))
            then_for = step.target
            continue
        last = sentences[-1] if sentences else None
        if last is None or last.closed or last.subject_id != step.source:
            subject = _capital(_name(source, step.source, mentioned))
            if then_for == step.source:
                subject += " then"
            last = _Sentence(step.source, subject)
            sentences.append(last)
        then_for = None
        mentioned.add(step.source)
        clause = _clause(step, target, mentioned)
        mentioned.add(step.target)
        previous = last.clauses[-1] if last.clauses else None
        if previous is not None and clause.mergeable and previous.mergeable and previous.verb == clause.verb:
            if clause.objects[0] not in previous.objects:
                previous.objects.extend(clause.objects)
        else:
            last.clauses.append(clause)
    return _paragraph(scenario, sentences)


def _paragraph(scenario: Scenario, sentences: list[_Sentence]) -> str:
    """Join the sentences, capping their number so the paragraph stays a paragraph."""
    spoken = [s for s in sentences if s.clauses]
    shown = spoken[:_MAX_SENTENCES]
    texts = [s.text() for s in shown]
    if scenario.trigger == "scheduled" and texts:
        when = f"On a schedule ({scenario.cadence})" if scenario.cadence else "On a schedule"
        texts[0] = f"{when}, {_lower_first(texts[0])}"
    if len(spoken) > len(shown):
        rest = sum(len(s.clauses) for s in spoken[len(shown):])
        texts.append(f"Then {rest} more step{'s' if rest != 1 else ''}: see the table below.")
    return " ".join(texts)


def _clause(step: Step, target: Element | None, mentioned: set[str]) -> _Clause:
    """The verb phrase for one step, chosen by the target's kind."""
    name = _name(target, step.target, mentioned)
    label = step.label.strip()
    optional = "in some runs " if step.optional else ""
    kind = target.kind if target is not None else "external"
    if kind == "queue":
        what = f"{label} " if label else "a message "
        return _Clause(f"{optional}queues {what}on", [name], enqueue=step.target)
    if kind == "database":
        if _WRITE.match(label):
            verb = "writes"
        elif _READ.match(label):
            verb = "reads"
        else:
            verb = "uses"
        return _Clause(optional + verb, [name], mergeable=not optional)
    if step.is_async:
        return _Clause(f"{optional}sends {label or 'a message'} to", [name])
    return _Clause(optional + "calls", [name], f" ({label})" if label else "")


def _name(element: Element | None, element_id: str, mentioned: set[str]) -> str:
    """How an element reads in a sentence: "a learner", "the LMS", "MySQL (edxapp)", "the Celery queue"."""
    if element is None:
        return element_id
    name = element.name or element.id
    if element.kind == "person":
        noun = _lower_first(name)
        if element.id in mentioned:
            return f"the {noun}"
        return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
    if element.kind == "database":
        tech = element.technology.strip()
        if tech and tech.lower() not in name.lower():
            return f"{tech} ({name})"
        return name
    if element.kind == "queue":
        return f"the {name if name.lower().endswith('queue') else name + ' queue'}"
    if element.kind == "container" and _takes_article(name):
        return f"the {name}"
    return name


_GENERIC_NOUNS = {"api", "app", "backend", "beat", "frontend", "gateway", "proxy", "scheduler", "server", "service",
                  "site", "web", "worker", "workers"}


def _takes_article(name: str) -> bool:
    """Whether a container reads with "the": acronyms and generic nouns do ("the LMS", "the CMS worker", "the Notes
    API"); product names do not ("Studio", "xPRO")."""
    words = name.split()
    if not words:
        return False
    first, last = words[0], words[-1].lower()
    return last in _GENERIC_NOUNS or (len(first) >= 2 and first.isupper())


def _lower_first(text: str) -> str:
    """Lower-case the first letter unless the word looks like an acronym or a brand ("LMS", "xPRO")."""
    if len(text) > 1 and (text[1].isupper() or text[0].islower()):
        return text
    return text[:1].lower() + text[1:]


def _capital(text: str) -> str:
    """Capitalise a sentence's first word when it is ours ("the", "a", "an"); names keep their spelling ("xPRO")."""
    if text.startswith(("the ", "a ", "an ")):
        return text[:1].upper() + text[1:]
    return text


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
