"""Group rewards for GRPO-style RL: one reward per rollout, as NVIDIA's RLHF recipe computes them.

Circular pairs ``(i, (i+1) % N)`` with no swap (N judge calls for N rollouts), and the
``simple_tiebreaker`` reward: a rollout's mean individual score, ties broken by the ranking
(NeMo-Gym ``genrm_compare``). The advantages are the group-normalised rewards GRPO uses.

    python examples/grpo_rewards.py
    python examples/grpo_rewards.py --endpoint http://127.0.0.1:8000/v1 --model <served-name>
"""

import asyncio

import numpy as np
from _sim import endpoint, parser

from genrm_rank.api import agroup_rewards
from genrm_rank.judges.openai_http import OpenAIJudge

PROMPT = [{"role": "user", "content": "Write a haiku about autumn rain."}]
ROLLOUTS = [
    "Cold rain on maples / each red leaf a small lantern / going out, one by one",
    "Autumn rain falls down. It is wet. The end.",
    "<think>5-7-5...</think>Grey sky leaks softly / puddles hold the fallen leaves / the "
    "street smells of earth",
    "Rain.",
    "Drumming on the roof / the year lets go of its heat / tea steams by the glass",
    "Leaves and rain and wind / autumn is a season of / many things that fall",
    "I cannot write poems.",
    "Gutter songs at dusk / a chestnut splits on the stone / night comes early now",
]


async def main(url: str, model: str) -> None:
    async with OpenAIJudge(url, model=model) as judge:
        group = await agroup_rewards(ROLLOUTS, PROMPT, judge=judge, seed=0)
    rewards = group.rewards
    advantages = (rewards - np.nanmean(rewards)) / (np.nanstd(rewards) + 1e-6)
    print(f"{group.ranking.calls} judge calls for {len(ROLLOUTS)} rollouts ({group.reward})")
    for text, r, a in zip(ROLLOUTS, rewards, advantages, strict=True):
        print(f"reward {r:5.2f}  advantage {a:+.2f}  {text[:60]}")


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    with endpoint(args.endpoint) as url:
        asyncio.run(main(url, args.model))
