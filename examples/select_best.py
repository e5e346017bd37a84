"""Best of N for one prompt, in a few lines.

python examples/select_best.py                      # starts serve-sim itself
python examples/select_best.py --endpoint http://127.0.0.1:8000/v1 --model <served-name>
"""

import asyncio

from _sim import endpoint, parser

from genrm_rank.api import aselect_best
from genrm_rank.judges.openai_http import OpenAIJudge

PROMPT = "Explain in two sentences why the sky is blue."
CANDIDATES = [
    "Because it reflects the ocean.",
    "Sunlight is scattered by air molecules, and short (blue) wavelengths scatter far more than "
    "long ones (Rayleigh scattering), so blue light reaches our eyes from every direction.",
    "Blue is the sky's natural colour.",
    "Air scatters blue light more than red light, so the sky looks blue.",
]


async def main(url: str, model: str) -> None:
    async with OpenAIJudge(url, model=model) as judge:
        choice = await aselect_best(CANDIDATES, PROMPT, judge=judge, seed=0)
    print(f"best: #{choice.best} (P(best) = {choice.p_best:.2f}, {choice.calls} judge calls)")
    print(choice.best_text)


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    with endpoint(args.endpoint) as url:
        asyncio.run(main(url, args.model))
