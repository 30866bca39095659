"""Partner webhooks: ``POST /webhooks/referral-events`` (DESIGN.md "Partner webhooks").

The route only moves bytes: the body and the signature header go to the bot's
:class:`~bot.referrals.intake.ReferralIntake` in a worker thread (database work never runs on
the event loop), and its answer comes back as JSON.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bot.referrals.events import MAX_BODY_BYTES
from bot.referrals.intake import ReferralIntake
from bot.referrals.signatures import HEADER

router = APIRouter()


@router.post("/webhooks/referral-events", include_in_schema=False)
async def referral_events(request: Request) -> JSONResponse:
    """A partner's conversion event: 200 when taken or replayed, 4xx with a reason otherwise."""
    intake: ReferralIntake = request.app.state.bot.referral_intake
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return JSONResponse(
            {"ok": False, "error": "too_large", "reason": f"body over {MAX_BODY_BYTES} bytes"},
            status_code=413,
        )
    body = await request.body()
    answer = await anyio.to_thread.run_sync(intake.receive, body, request.headers.get(HEADER))
    return JSONResponse(answer.payload, status_code=answer.status)
