"""perlfaq*.pod (Debian perl-doc) -> StackExchange Posts.xml rows, for the StackExchange reader tests.

No real Posts.xml exists in any package registry, so the real Q&A text of perlfaq is written in the
dump's layout: each `=head2` question is a question post (PostTypeId 1, Title = the question), and
its answer is split at its paragraphs into answer posts (PostTypeId 2, ParentId = the question).
Scores are MADE UP, and stated here: answer number i (0-based, in FAQ order) of question q gets
score (7 * i + q) % 5, so scores tie often and the id tie-break is exercised; questions score q % 3.
"""

from __future__ import annotations

import html
import re
from xml.sax.saxutils import quoteattr


def answer_score(q: int, i: int) -> int:
    return (7 * i + q) % 5


def pod_questions(pod: str) -> list[tuple[str, list[str]]]:
    """[(question, [answer paragraph, ...])] from the =head2 entries of a perlfaq pod."""
    out = []
    for block in re.split(r"^=head2 ", pod, flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        body = re.split(r"^=head1 ", body, flags=re.M)[0]
        paras = [p.strip("\n") for p in re.split(r"\n\s*\n", body) if p.strip() and not p.startswith("=")]
        out.append((title.strip(), paras))
    return out


def _pod_html(para: str) -> str:
    if para.startswith((" ", "\t")):
        return f"<pre><code>{html.escape(para)}</code></pre>"
    text = html.escape(para)
    text = re.sub(r"[CF]&lt;(.*?)&gt;", r"<code>\1</code>", text)
    text = re.sub(r"[BILS]&lt;(.*?)&gt;", r"\1", text)
    return f"<p>{text}</p>"


def posts_xml(pod: str, first_id: int = 1, answers_per_question: int = 3) -> tuple[str, list[dict]]:
    """(Posts.xml text, [{'id', 'title', 'answers': [(id, score, html)]}]) for one pod file."""
    rows, questions = [], []
    next_id = first_id
    for q, (title, paras) in enumerate(pod_questions(pod)):
        if not paras:
            continue
        qid = next_id
        next_id += 1
        rows.append(f'  <row Id="{qid}" PostTypeId="1" Score="{q % 3}" Title={quoteattr(title)} '
                    f'Body={quoteattr("<p>" + html.escape(title) + "</p>")} Tags="&lt;perl&gt;" />')
        n = min(answers_per_question, len(paras))
        chunks = [paras[i::n] for i in range(n)]  # paragraphs dealt round-robin into n answers
        answers = []
        for i, chunk in enumerate(chunks):
            body = "\n".join(_pod_html(p) for p in chunk)
            answers.append((next_id, answer_score(q, i), body))
            next_id += 1
        questions.append({"id": qid, "title": title, "answers": answers})
        for aid, score, body in answers:
            rows.append(f'  <row Id="{aid}" PostTypeId="2" ParentId="{qid}" Score="{score}" '
                        f'Body={quoteattr(body)} />')
    text = '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "\n".join(rows) + "\n</posts>\n"
    return text, questions
