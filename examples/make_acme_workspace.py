"""Write the fictional Acme support workspace in Slack's export layout.

Everything here was written for threadtune; no real workspace was copied. The output is
`channels.json`, `users.json`, `<channel>/<YYYY-MM-DD>.json` (one JSON array of message objects
per day, as in a Slack export) and `heldout.jsonl` (new phrasings of facts in the threads, for
evaluation). `handbook.md` and `README.md` beside them are written by hand.

Message texts follow Slack's own escaping: `<https://...>` links, `<@U...>` mentions, and
`&lt;`, `&gt;`, `&amp;` for literal angle brackets and ampersands.

Run: python examples/make_acme_workspace.py [OUT_DIR]   (default: examples/acme-workspace)
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

TEAM = "T0ACME000"
UUID_NS = uuid.UUID("6f1c2a52-0d3e-4c7e-9a51-ac3e2025d3e0")  # fixed, so client_msg_id is reproducible

# key: (id, name, real name, title, tz)
PEOPLE = {
    "priya": ("U0ACME01", "priya.natarajan", "Priya Natarajan", "IT Support Lead", "Europe/Berlin"),
    "tomasz": ("U0ACME02", "tomasz.kowal", "Tomasz Kowal", "IT Support Engineer", "Europe/Warsaw"),
    "lea": ("U0ACME03", "lea.fischer", "Lea Fischer", "People Partner", "Europe/Berlin"),
    "daniel": ("U0ACME04", "daniel.okafor", "Daniel Okafor", "People Operations", "Europe/Berlin"),
    "marta": ("U0ACME05", "marta.silva", "Marta Silva", "SRE Lead", "Europe/Lisbon"),
    "kenji": ("U0ACME06", "kenji.watanabe", "Kenji Watanabe", "Backend Engineer", "Europe/Berlin"),
    "sofia": ("U0ACME07", "sofia.rossi", "Sofia Rossi", "Backend Engineer, Payments", "Europe/Rome"),
    "omar": ("U0ACME08", "omar.haddad", "Omar Haddad", "Account Executive", "Europe/Berlin"),
    "elin": ("U0ACME09", "elin.berg", "Elin Berg", "Product Designer", "Europe/Stockholm"),
    "lucas": ("U0ACME10", "lucas.martin", "Lucas Martin", "Finance Analyst", "Europe/Paris"),
    "grace": ("U0ACME11", "grace.kim", "Grace Kim", "Chief Operating Officer", "Europe/Berlin"),
    "nina": ("U0ACME12", "nina.petrova", "Nina Petrova", "Platform Engineer", "Europe/Berlin"),
}
# key: (user id, bot id, name, real name)
BOTS = {
    "shipit": ("U0ACMEB1", "B0ACMESHIP", "shipit", "shipit deploy bot"),
    "klaxon": ("U0ACMEB2", "B0ACMEKLAX", "klaxon", "Klaxon alerts"),
}

CHANNELS = {
    "announcements": ("C0ACMEANN", "Company-wide news. Read-only for most people; questions in threads.", True),
    "it-help": ("C0ACMEIT1", "Ask IT anything: laptops, VPN, accounts, software. Answers get a :white_check_mark:.", False),
    "hr-questions": ("C0ACMEHR1", "Questions for the People team: leave, expenses, payroll, benefits.", False),
    "eng-oncall": ("C0ACMEENG", "On-call, deploys, incidents. Pages and deploy notices land here too.", False),
}

ANSWERED = "white_check_mark"


def uid(key: str) -> str:
    """The Slack user id for a person or bot key."""
    return PEOPLE[key][0] if key in PEOPLE else BOTS[key][0]


def at(key: str) -> str:
    """A Slack mention of a person."""
    return f"<@{uid(key)}>"


def R(who, after, text, ok=False, react=None, edited=None):  # noqa: N802 - reads like a table row
    """One reply: who, minutes after the root, text; ok marks the accepted answer (check mark)."""
    return {"who": who, "after": after, "text": text, "ok": ok, "react": react or [], "edited": edited}


def T(channel, day, hm, who, text, *replies, react=None, edited=None, bot=False, fact=None):  # noqa: N802
    """One top-level message (a thread root when it has replies) on 2025-03-<day> at hm (UTC).

    fact is a label for readers only: threads sharing a label ask the same fact in other words.
    """
    return {
        "channel": channel, "day": day, "hm": hm, "who": who, "text": text, "replies": list(replies),
        "react": react or [], "edited": edited, "bot": bot, "fact": fact,
    }


def J(channel, day, hm, who):  # noqa: N802
    """A channel_join message."""
    return {"channel": channel, "day": day, "hm": hm, "who": who, "join": True}


def TOMB(channel, day, hm, *replies):  # noqa: N802
    """A thread whose root was deleted: Slack keeps a tombstone while replies remain."""
    return {"channel": channel, "day": day, "hm": hm, "tombstone": True, "replies": list(replies)}


VPN = "<https://vpn.acme.internal/reset>"
IT, HR, ENG, ANN = "it-help", "hr-questions", "eng-oncall", "announcements"

EVENTS = [
    # ---------------------------------------------------------------- joins at the start
    *[J(ch, 3, f"07:{i:02d}", who) for ch, members in {
        IT: ["priya", "tomasz", "omar", "elin", "lucas", "kenji", "nina", "daniel", "marta"],
        HR: ["lea", "daniel", "kenji", "omar", "elin", "nina", "tomasz", "lucas", "marta"],
        ENG: ["marta", "kenji", "nina", "omar"],
        ANN: [p for p in PEOPLE if p != "sofia"],
    }.items() for i, who in enumerate(members)],

    # ---------------------------------------------------------------- #it-help
    T(IT, 3, "08:12", "omar", 'My VPN keeps saying "certificate expired" and won\'t connect. How do I get it working again?',
      R("tomasz", 6, f"You can reset your VPN profile yourself at {VPN}, or run `acmectl vpn reset --user &lt;your-id&gt;`. The new profile is emailed to you within 10 minutes.", ok=True),
      R("omar", 21, "worked, thanks!"), fact="vpn_reset"),
    T(IT, 3, "09:30", "elin", "What are the rules for a new password? Mine got rejected three times :upside_down_face:",
      R("priya", 4, "Passwords need at least 14 characters and expire every 180 days; change yours at <https://id.acme.internal/password>. Your last 5 passwords can't be reused.", ok=True),
      fact="password"),
    T(IT, 3, "11:58", "kenji", "anyone up for lunch at the ramen place? :ramen:",
      R("elin", 2, ":raised_hand:"), R("omar", 3, "in!")),
    T(IT, 4, "08:47", "nina", "How do I get read access to the orders production database?",
      R("tomasz", 9, "Request the `db-readonly` role in Gatekeeper (<https://gatekeeper.acme.internal>). Your team lead approves it and the grant expires after 90 days.", ok=True),
      R("nina", 12, "approved already :rocket: and how do I actually connect?"),
      R("tomasz", 15, "Run `acmectl db connect --replica orders` once the grant is active; it opens a read-only session on the replica.", ok=True),
      fact="gatekeeper"),
    T(IT, 4, "10:05", "lucas", "I left my YubiKey at home and can't log in to anything. Help?",
      R("priya", 3, "Call the IT desk on extension 4357 and they'll give you a temporary bypass code that is valid for 24 hours. If the key is really lost, report it at <https://it.acme.internal/lost> so it gets revoked.", ok=True),
      R("lucas", 5, ":pray:"), fact="yubikey"),
    T(IT, 4, "14:20", "elin", ":thinking_face: is there a way to get a second monitor for working from home?"),
    T(IT, 5, "09:15", "kenji", "Can I install Docker Desktop on my work laptop or is that blocked?",
      R("tomasz", 7, "Anything listed in Toolshed (<https://toolshed.acme.internal>) can be installed self-service, and Docker Desktop is in there. Software that isn't listed needs a security review ticket, which takes about 5 business days.", ok=True),
      fact="software"),
    T(IT, 5, "13:40", "lucas", "vpn broken after my laptop reinstall :confused: is there a self service thing or do I need a ticket?",
      R("priya", 5, f"No ticket needed: reset your VPN profile at {VPN} or with `acmectl vpn reset --user &lt;your-id&gt;`, and the new profile arrives by email within 10 minutes.", ok=True),
      R("lucas", 19, ":pray: all good now"), fact="vpn_reset"),
    TOMB(IT, 5, "15:02",
         R("tomasz", 3, "Please don't post passwords in public channels. I've rotated that service account; the new secret is in the vault entry.")),
    T(IT, 6, "12:31", "omar", "What's the wifi password for visitors? I have a customer coming in at 2",
      R("priya", 2, "Guests use the Acme-Guest network. The password changes every Monday and is shown at <https://wifi.acme.internal>.", ok=True),
      fact="wifi"),
    T(IT, 6, "13:05", "elin", "outlook won't send my design files, it says the message is too large",
      R("tomasz", 6, "Emails are capped at 25 MB. Put bigger files in Vault (<https://vault.acme.internal>) and send a share link instead; share links expire after 14 days.", ok=True),
      fact="email_limit"),
    T(IT, 6, "15:44", "kenji", "Where do I put my SSH public key so I can reach the build servers?",
      R("marta", 8, "Register it with `acmectl ssh register --key ~/.ssh/id_ed25519.pub` or upload it at <https://keys.acme.internal>. Only ed25519 keys are accepted.", ok=True, edited=11),
      fact="ssh"),
    T(IT, 7, "16:10", "lucas", "what are IT's opening hours? my laptop won't boot and I'm working late today. call me on +49 170 5550123 if easier",
      R("tomasz", 4, "The IT desk is staffed 08:00–18:00 CET on weekdays. Outside those hours call extension 4357 and press 2 for the IT on-call line.", ok=True),
      fact="it_hours"),
    T(IT, 7, "16:55", "omar", ":tada: :tada: laptop finally fixed, thanks IT!", react=[("heart", ["priya", "tomasz"])]),
    J(IT, 10, "08:00", "sofia"),
    T(IT, 10, "08:20", "sofia", "Hi! New here :wave: how long does my password have to be, and how often do I have to change it?",
      R("priya", 6, f"Welcome {at('sofia')}! At least 14 characters, and it expires every 180 days. You can change it any time at <https://id.acme.internal/password>.", ok=True),
      fact="password"),
    T(IT, 10, "14:00", "sofia", "who do I ask for access to the payments github repo?",
      R("kenji", 4, "Nobody directly: request it in Gatekeeper (<https://gatekeeper.acme.internal>). Your team lead approves it, and access expires after 90 days, so you renew it then.", ok=True),
      R("sofia", 6, "perfect, thank you"), fact="gatekeeper"),
    T(IT, 11, "09:12", "omar", "Does anyone know if we can get a paid Miro account?"),
    T(IT, 11, "11:03", "daniel", "Lost my yubikey on the train :disappointed: what do I do?",
      R("tomasz", 2, "Report it at <https://it.acme.internal/lost> right away so the key is revoked, then call extension 4357 for a bypass code that works for 24 hours until your replacement key is ready.", ok=True),
      fact="yubikey"),
    T(IT, 12, "08:35", "nina", "Getting 'auth failed' on the VPN since this morning. Is there a reset button somewhere?",
      R("omar", 3, "same here yesterday, I think I just restarted?"),
      R("priya", 6, f"Yes: {VPN} resets your profile, or run `acmectl vpn reset --user &lt;your-id&gt;` from a terminal. The new profile is emailed within 10 minutes.", ok=True),
      R("nina", 20, "that did it, ty"), fact="vpn_reset"),
    T(IT, 12, "13:27", "sofia", "Is there a list of software I'm allowed to install?",
      R("tomasz", 5, "Yes, Toolshed at <https://toolshed.acme.internal> lists everything you can install yourself. For anything else, open a security review ticket; it takes about 5 business days.", ok=True),
      fact="software"),
    T(IT, 13, "10:01", "kenji", "is the 4th floor coffee machine broken again?"),
    T(IT, 13, "14:48", "lucas", "Which VPN gateway should I use while I'm in the US office for two weeks?",
      R("priya", 9, "Use gw-us.vpn.acme.internal while you're in the US; gw-eu.vpn.acme.internal is the default for Europe."),
      R("lucas", 12, "thanks"), fact="vpn_gateway"),
    T(IT, 14, "09:50", "sofia", "The build server rejects my RSA key, which key type do you need?",
      R("marta", 6, "Only ed25519 keys are accepted. Generate one with `ssh-keygen -t ed25519` and register it with `acmectl ssh register --key ~/.ssh/id_ed25519.pub`.", ok=True),
      fact="ssh"),
    T(IT, 17, "09:05", "daniel", "We have interview candidates on site tomorrow, where do I find the guest wifi password?",
      R("tomasz", 4, "It's on <https://wifi.acme.internal>; the Acme-Guest password rotates every Monday.", ok=True),
      fact="wifi"),
    T(IT, 18, "11:16", "lucas", "What's the max attachment size for email?",
      R("priya", 3, "25 MB. For anything bigger, share a Vault link (<https://vault.acme.internal>); links expire after 14 days.", ok=True),
      fact="email_limit"),
    T(IT, 18, "11:30", "omar", ":coffee:"),

    # ---------------------------------------------------------------- #hr-questions
    T(HR, 3, "09:02", "kenji", "Do I need approval to expense a conference ticket? It's 180 EUR.",
      R("lea", 11, "Expenses up to 250 EUR don't need approval: submit the receipt in Ledger (<https://ledger.acme.internal>) within 30 days. Anything above 250 EUR needs your manager's approval in Ledger first.", ok=True),
      fact="expense_limit"),
    T(HR, 3, "10:44", "omar", "how many vacation days do we get per year?",
      R("daniel", 5, "28 vacation days a year plus 2 recharge days. Book them in Harbor (<https://harbor.acme.internal>).", ok=True),
      fact="vacation_days"),
    T(HR, 4, "09:20", "elin", "I still have 7 days left from last year, do they expire?",
      R("lea", 8, "You can carry over up to 5 days, and they must be used by 31 March. Anything beyond 5 days expires.", ok=True),
      R("elin", 10, ":sob: ok, booking now"), fact="carryover"),
    T(HR, 4, "07:55", "nina", "I'm sick today, what's the process?",
      R("marta", 10, "get well soon :hugging_face:"),
      R("daniel", 62, "Tell your manager before 10:00 and log the sick day in Harbor. A doctor's note is only needed from the 3rd consecutive sick day.", ok=True),
      fact="sick_leave"),
    T(HR, 5, "11:11", "kenji", "Do we have a budget for courses or books?",
      R("lea", 14, "Yes, everyone has a learning budget of 1,500 EUR per calendar year. Request it in Harbor under Learning before you buy.", ok=True),
      fact="learning_budget"),
    T(HR, 6, "16:20", "omar", "Client dinner came to 310 EUR, can I just submit it?",
      R("lea", 9, "Above 250 EUR you need your manager's approval in Ledger before it's reimbursed. Submit it in Ledger with the receipt within 30 days and pick your manager as approver.", ok=True),
      fact="expense_limit"),
    T(HR, 6, "09:41", "elin", "how many days can I work from home?",
      R("daniel", 7, "You can work remotely up to 3 days a week; agree the days with your team lead.", ok=True),
      fact="remote_days"),
    J(HR, 10, "08:01", "sofia"),
    T(HR, 11, "08:50", "kenji", "Do I need a doctor's note if I'm off sick for 2 days?",
      R("lea", 9, "No, a doctor's note is only required from the 3rd consecutive sick day. Just tell your manager before 10:00 and log it in Harbor.", ok=True),
      fact="sick_leave"),
    T(HR, 11, "13:13", "marta", "Is there a referral bonus if someone I recommend gets hired?",
      R("daniel", 18, "Yes, 2,000 EUR, paid after the new hire passes their 6-month probation. Submit the referral in Harbor before they apply.", ok=True),
      fact="referral"),
    T(HR, 12, "10:02", "nina", "Can I get a conference ticket paid from my training money? How much is left for the year?",
      R("lea", 16, "Your learning budget is 1,500 EUR per year. You can see what's left in Harbor under Learning and request the ticket there.", ok=True),
      fact="learning_budget"),
    T(HR, 12, "12:45", "omar", "does anyone know if the gym discount is still a thing?"),
    T(HR, 13, "09:33", "lucas", "What's the hotel limit for business trips?",
      R("lea", 7, "Hotels up to 160 EUR per night are fine without approval. Book through Compass (<https://compass.acme.internal>), the travel desk.", ok=True),
      fact="hotel_cap"),
    T(HR, 13, "15:09", "tomasz", "Can unused holiday roll over into next year?",
      R("daniel", 3, "Up to 5 unused days carry over, but they have to be taken by 31 March or they expire.", ok=True),
      fact="carryover"),
    T(HR, 14, "10:27", "sofia", "what's the limit for expenses before I need sign-off?",
      R("lea", 5, "250 EUR. Up to that you just submit the receipt in Ledger within 30 days; above it, your manager has to approve it in Ledger.", ok=True),
      fact="expense_limit"),
    T(HR, 14, "11:50", "elin", "Is the Berlin office closed on Good Friday?",
      R("daniel", 6, "Yes, Good Friday (18 April) is a public holiday in Berlin and the office is closed."),
      edited=2, fact="good_friday"),
    T(HR, 17, "09:48", "sofia", "How much annual leave do I have as a new joiner?",
      R("daniel", 8, "Everyone gets 28 vacation days a year plus 2 recharge days, pro-rated in your first year. You'll see your balance in Harbor.", ok=True),
      fact="vacation_days"),
    T(HR, 17, "14:36", "nina", "Has anyone used the parental leave top-up? How does it work?",
      R("omar", 31, "+1 would like to know too")),
    T(HR, 18, "10:58", "sofia", "What's the policy on WFH days per week?",
      R("lea", 6, "Up to 3 remote days a week; agree which days with your team lead.", ok=True),
      fact="remote_days"),

    # ---------------------------------------------------------------- #eng-oncall
    T(ENG, 3, "09:40", "kenji", "When does the on-call week switch over?",
      R("marta", 5, "On-call rotates weekly; handover is Monday at 10:00 CET. Each week has a primary and a secondary, and the schedule lives in Klaxon (<https://klaxon.acme.internal>).", ok=True),
      fact="oncall_rotation"),
    T(ENG, 3, "13:12", "shipit", f"Deployed *checkout-api* `2025.03.03-2` to prod (requested by {at('kenji')}).", bot=True),
    T(ENG, 4, "10:30", "nina", "What's the command to deploy to prod?",
      R("kenji", 3, "`shipit deploy &lt;service&gt; --env prod`. It needs a green CI build and an approved PR.", ok=True),
      fact="deploy"),
    T(ENG, 4, "11:02", "shipit", f"Deployed *search-indexer* `2025.03.04-1` to prod (requested by {at('nina')}).", bot=True),
    T(ENG, 5, "08:14", "klaxon", "[FIRING] checkout-api error rate 2.6% &gt; 2% for 5m (SEV2). Primary: " + at("nina"),
      R("nina", 2, "ack, looking"),
      R("nina", 14, "rolled back with `shipit rollback checkout-api`, error rate back to 0.3%"),
      R("klaxon", 19, "[RESOLVED] checkout-api error rate 0.3%"), bot=True),
    T(ENG, 5, "11:26", "nina", "What's the threshold that actually pages someone for checkout?",
      R("marta", 7, "Checkout pages when the error rate is above 2% for 5 minutes, or when p99 latency is above 800 ms for 10 minutes. Anything below that only goes to #eng-alerts.", ok=True),
      fact="paging_threshold"),
    T(ENG, 6, "09:18", "kenji", "how do I roll back a bad deploy quickly?",
      R("marta", 4, "`shipit rollback &lt;service&gt;` returns to the previous release; add `--to &lt;release&gt;` to pick a specific one. Rollbacks are allowed during a freeze.", ok=True),
      fact="rollback"),
    T(ENG, 6, "14:05", "nina", "How long do I have to ack a page before it escalates?",
      R("marta", 3, "15 minutes. An unacknowledged page goes to the secondary after 15 minutes and to the engineering manager after 30.", ok=True),
      fact="ack_sla"),
    T(ENG, 7, "13:40", "kenji", "Can I still ship the search fix today or are we frozen?",
      R("marta", 6, "Deploys are frozen from Friday 15:00 CET until Monday 08:00 CET, so ship before 15:00 or wait until Monday. Only rollbacks and SEV1 fixes are allowed during the freeze.", ok=True),
      R("kenji", 8, "shipping now :running:"), fact="deploy_freeze"),
    T(ENG, 7, "13:52", "shipit", f"Deployed *search-api* `2025.03.07-1` to prod (requested by {at('kenji')}).", bot=True),
    J(ENG, 10, "08:02", "sofia"),
    T(ENG, 10, "09:10", "sofia", "I'm new, how does the on-call rotation work here?",
      R("marta", 11, f"{at('sofia')} it's a weekly rotation with a primary and a secondary, handing over every Monday at 10:00 CET. Check your shifts in Klaxon (<https://klaxon.acme.internal>); new engineers shadow one week before their first primary week.", ok=True),
      fact="oncall_rotation"),
    T(ENG, 10, "09:35", "sofia", "Do we get paid extra for on-call?",
      R("marta", 5, "Yes: 300 EUR for each week as primary on-call, and 100 EUR for a week as secondary.", ok=True),
      fact="oncall_pay"),
    T(ENG, 11, "10:12", "sofia", "how do I ship my service to production?",
      R("kenji", 6, "Run `shipit deploy &lt;service&gt; --env prod` once CI is green and the PR is approved.", ok=True),
      fact="deploy"),
    T(ENG, 11, "10:31", "shipit", f"Deployed *payments-api* `2025.03.11-1` to prod (requested by {at('sofia')}).", bot=True,
      react=[("tada", ["kenji", "marta"])]),
    T(ENG, 11, "16:50", "sofia", "Is staging data persistent? my test orders vanished overnight",
      R("nina", 915, "No, staging (<https://staging.acme.internal>) is reset every night at 02:00 UTC.", ok=True),
      fact="staging"),
    T(ENG, 12, "14:22", "sofia", "Where can I search prod logs?",
      R("nina", 4, "In Lantern at <https://lantern.acme.internal>. Logs are kept for 30 days.", ok=True),
      fact="logs"),
    T(ENG, 12, "15:01", "kenji", "at what latency do we get woken up for checkout?",
      R("marta", 9, "When checkout p99 latency stays above 800 ms for 10 minutes, or the error rate is above 2% for 5 minutes.", ok=True),
      fact="paging_threshold"),
    T(ENG, 13, "09:25", "nina", "When is the postmortem due for Wednesday's SEV2?",
      R("marta", 12, "Postmortems for SEV1 and SEV2 are due within 5 business days, using the template at <https://wiki.acme.internal/postmortem>.", ok=True),
      fact="postmortem"),
    T(ENG, 14, "14:20", "sofia", "shipit says blocked, is there a freeze on Fridays??",
      R("kenji", 2, "Yes, no deploys from Friday 15:00 CET until Monday 08:00 CET. Rollbacks and SEV1 fixes are the only exceptions.", ok=True),
      fact="deploy_freeze"),
    T(ENG, 14, "14:18", "shipit", "Deploy of *payments-api* blocked: freeze window active (Fri 15:00 CET to Mon 08:00 CET).", bot=True),
    T(ENG, 17, "10:40", "sofia", "If I miss a page, what happens?",
      R("marta", 8, "If you don't acknowledge within 15 minutes it escalates to the secondary, and after 30 minutes to the engineering manager.", ok=True),
      fact="ack_sla"),
    T(ENG, 17, "13:03", "kenji", "anyone know why `test_checkout_retry` keeps failing on CI?",
      R("nina", 45, "seeing it too :eyes:")),
    T(ENG, 18, "08:58", "nina", "what time is on-call handover?",
      R("marta", 4, "Mondays at 10:00 CET; the outgoing primary hands over in the weekly on-call sync.", ok=True),
      fact="oncall_rotation"),
    T(ENG, 19, "11:20", "omar", "are deploys allowed on saturday? a customer asked for a fix before monday",
      R("marta", 7, "No. The deploy freeze runs from Friday 15:00 CET to Monday 08:00 CET; only rollbacks and SEV1 fixes can go out.", ok=True),
      fact="deploy_freeze"),

    # ---------------------------------------------------------------- #announcements
    T(ANN, 3, "08:00", "grace",
      "*Office move: Berlin HQ* :office:\n"
      "From Monday 24 March we work from our new office at Lindenstraße 12, 10969 Berlin, floors 3 and 4.\n"
      "• Badges are handed out at reception on the 3rd floor (room 3.01) from 08:00.\n"
      "• The old office on Kastanienallee closes on Friday 21 March; please take personal items home by then.\n"
      "• There are 20 bike spaces in the courtyard and no car parking.\n"
      "• The 3rd-floor printer keeps its name, Roadrunner.\n"
      "Questions go to <#C0ACMEHR1|hr-questions>. Thanks for your patience &amp; see you there!",
      R("omar", 25, "Is there a shower for people who cycle in?"),
      R("grace", 31, "Yes, two showers on the 3rd floor next to the bike storage.", ok=True),
      react=[("tada", ["priya", "kenji", "elin", "omar"])], fact="office_move"),
    T(ANN, 6, "08:30", "priya",
      "*Security training* :lock:\n"
      "The annual security awareness training is mandatory for everyone and must be completed by 30 April "
      "at <https://learn.acme.internal/security>. It takes about 45 minutes.\n"
      "Reminder: IT will never ask for your password. Report phishing with the Report button in Outlook "
      "or forward it to <mailto:phish@acme.internal|phish@acme.internal>.",
      R("elin", 40, "Does it count towards the learning budget?"),
      R("priya", 47, "No, it's mandatory training and doesn't use your 1,500 EUR learning budget.", ok=True),
      fact="security_training"),
    T(ANN, 10, "08:30", "daniel", f"Please welcome {at('sofia')}, who joins the Payments team as a backend engineer today :wave:",
      R("kenji", 5, ":wave:"), R("elin", 9, ":tada:"), R("sofia", 30, "thank you all! :blush:"),
      react=[("wave", ["grace", "kenji", "marta", "elin", "priya"])]),
    J(ANN, 10, "08:03", "sofia"),
    T(ANN, 14, "08:15", "marta",
      "*Incident process reminder* :rotating_light:\n"
      "• SEV1: customer-facing outage or data loss. SEV2: degraded service for customers. SEV3: internal only.\n"
      "• For a SEV1, page through Klaxon (<https://klaxon.acme.internal>) and open a channel named #inc-&lt;date&gt;-&lt;topic&gt;.\n"
      "• The incident commander updates the status page (<https://status.acme.com>) every 30 minutes until resolved.\n"
      "• Postmortems for SEV1 and SEV2 are due within 5 business days (template: <https://wiki.acme.internal/postmortem>).",
      R("sofia", 22, "Who is the incident commander by default?"),
      R("marta", 26, "The primary on-call is incident commander until they explicitly hand it off.", ok=True),
      fact="incident_process"),
    T(ANN, 17, "08:05", "grace",
      "*Save the date: company offsite* :sunny:\n"
      "Our offsite is 10–12 September in Lisbon. The travel desk books everyone's travel and hotel through Compass, "
      "so please don't book anything yourself. Agenda follows in June.",
      R("lucas", 50, "are partners invited?"),
      react=[("heart_eyes", ["elin", "omar", "sofia"])], fact="offsite"),
]

HELDOUT = [
    ("I forgot my VPN login and can't connect. Can I reset it myself without IT?",
     "Yes: reset your VPN profile at https://vpn.acme.internal/reset or run `acmectl vpn reset --user <id>`; the new profile is emailed within 10 minutes."),
    ("What is the minimum length for an Acme password?",
     "14 characters. Passwords expire every 180 days; change yours at https://id.acme.internal/password."),
    ("Up to what amount can I expense something without my manager signing off?",
     "250 EUR. Submit the receipt in Ledger (https://ledger.acme.internal) within 30 days; above 250 EUR your manager must approve it in Ledger."),
    ("How many leftover holiday days can I take into the new year?",
     "Up to 5 days, and they must be used by 31 March or they expire."),
    ("When are production deploys blocked?",
     "Deploys are frozen from Friday 15:00 CET until Monday 08:00 CET; only rollbacks and SEV1 fixes are allowed."),
    ("What error rate on checkout causes a page?",
     "An error rate above 2% for 5 minutes pages on-call (so does p99 latency above 800 ms for 10 minutes)."),
    ("Which tool do I use to request access to a repository or database?",
     "Gatekeeper (https://gatekeeper.acme.internal); your team lead approves and the access expires after 90 days."),
    ("My security key is gone. Who do I contact?",
     "Report it at https://it.acme.internal/lost so it is revoked, and call IT on extension 4357 for a bypass code valid for 24 hours."),
    ("How much can I spend on training each year?",
     "1,500 EUR per calendar year; request it in Harbor under Learning."),
    ("On which day and at what time does the on-call shift change hands?",
     "Mondays at 10:00 CET; on-call rotates weekly with a primary and a secondary, scheduled in Klaxon."),
    ("From which day of illness do I need a medical certificate?",
     "From the 3rd consecutive sick day; before that, tell your manager before 10:00 and log it in Harbor."),
    ("How quickly must an on-call engineer acknowledge an alert?",
     "Within 15 minutes; after that it escalates to the secondary, and after 30 minutes to the engineering manager."),
    ("What's the biggest file I can attach to an email?",
     "25 MB; share larger files as a Vault link (https://vault.acme.internal), which expires after 14 days."),
    ("What kind of SSH key does Acme accept for servers?",
     "Only ed25519 keys, registered with `acmectl ssh register --key ~/.ssh/id_ed25519.pub` or at https://keys.acme.internal."),
    ("Where can a visitor get the Wi-Fi password?",
     "Visitors use the Acme-Guest network; its password rotates every Monday and is shown at https://wifi.acme.internal."),
    ("What do I run to undo a broken release?",
     "`shipit rollback <service>` returns to the previous release; `--to <release>` picks a specific one."),
]


def _ts(day: int, hm: str, after_min: int = 0, seq: int = 0) -> str:
    """A Slack ts string: epoch seconds, a dot and six digits, unique by construction of seq."""
    h, m = (int(x) for x in hm.split(":"))
    moment = datetime(2025, 3, day, h, m, tzinfo=timezone.utc) + timedelta(minutes=after_min, seconds=(seq * 7) % 53)
    return f"{int(moment.timestamp())}.{(seq * 1409 + 100) % 1000000:06d}"


def _edited(user: str, day: int, hm: str, after_min: int) -> dict:
    """Slack's edited marker: who edited and when (whole seconds, as Slack writes it)."""
    return {"user": user, "ts": _ts(day, hm, after_min).split(".")[0] + ".000000"}


def _message(who: str, text: str, ts: str) -> dict:
    """A plain user message as Slack exports it."""
    return {
        "client_msg_id": str(uuid.uuid5(UUID_NS, f"{who}:{ts}")),
        "type": "message",
        "text": text,
        "user": uid(who),
        "ts": ts,
        "team": TEAM,
    }


def _bot_message(who: str, text: str, ts: str) -> dict:
    """A message posted by an integration (subtype bot_message)."""
    user_id, bot_id, name, _ = BOTS[who]
    return {"type": "message", "subtype": "bot_message", "text": text, "user": user_id, "ts": ts,
            "username": name, "bot_id": bot_id}


def _reactions(pairs, check_by: str | None) -> list[dict]:
    """Slack's reactions list; the asker's check mark comes first when the reply is the answer."""
    out = [{"name": ANSWERED, "users": [uid(check_by)], "count": 1}] if check_by else []
    out += [{"name": name, "users": [uid(u) for u in users], "count": len(users)} for name, users in pairs]
    return out


def build_messages() -> dict[str, list[dict]]:
    """All messages per channel, each with a unique ts."""
    per_channel: dict[str, list[dict]] = {name: [] for name in CHANNELS}
    seq = 0
    for ev in EVENTS:
        seq += 1
        root_ts = _ts(ev["day"], ev["hm"], 0, seq)
        if ev.get("join"):
            per_channel[ev["channel"]].append({
                "type": "message", "subtype": "channel_join", "ts": root_ts, "user": uid(ev["who"]),
                "text": f"<@{uid(ev['who'])}> has joined the channel",
            })
            continue
        if ev.get("tombstone"):
            root = {"type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                    "user": "USLACKBOT", "hidden": True, "ts": root_ts}
            asker = None
        elif ev["bot"]:
            root = _bot_message(ev["who"], ev["text"], root_ts)
            asker = None
        else:
            root = _message(ev["who"], ev["text"], root_ts)
            asker = ev["who"]
        if ev.get("edited"):
            root["edited"] = _edited(root["user"], ev["day"], ev["hm"], ev["edited"])
        if ev.get("react"):
            root["reactions"] = _reactions(ev["react"], None)
        replies = []
        for r in ev["replies"]:
            seq += 1
            ts = _ts(ev["day"], ev["hm"], r["after"], seq)
            msg = _bot_message(r["who"], r["text"], ts) if r["who"] in BOTS else _message(r["who"], r["text"], ts)
            msg["thread_ts"] = root_ts
            msg["parent_user_id"] = root["user"]
            if r["edited"]:
                msg["edited"] = _edited(msg["user"], ev["day"], ev["hm"], r["edited"])
            reactions = _reactions(r["react"], asker if r["ok"] else None)
            if reactions:
                msg["reactions"] = reactions
            replies.append(msg)
        if replies:
            users = list(dict.fromkeys(m["user"] for m in replies))
            root.update({
                "thread_ts": root_ts,
                "reply_count": len(replies),
                "reply_users_count": len(users),
                "latest_reply": max(m["ts"] for m in replies),
                "reply_users": users,
                "replies": [{"user": m["user"], "ts": m["ts"]} for m in replies],
                "subscribed": False,
            })
        per_channel[ev["channel"]] += [root, *replies]
    return per_channel


def build_users() -> list[dict]:
    """users.json: the people and the two integration bot users."""
    users = []
    for key, (id_, name, real, title, tz) in PEOPLE.items():
        users.append({
            "id": id_, "team_id": TEAM, "name": name, "deleted": False, "real_name": real, "tz": tz,
            "is_admin": key in ("priya", "grace"), "is_owner": key == "grace", "is_bot": False,
            "is_app_user": False, "updated": 1735689600,
            "profile": {"real_name": real, "display_name": real.split()[0], "title": title,
                        "email": f"{name}@acme.example"},
        })
    for id_, bot_id, name, real in BOTS.values():
        users.append({
            "id": id_, "team_id": TEAM, "name": name, "deleted": False, "real_name": real,
            "is_admin": False, "is_owner": False, "is_bot": True, "is_app_user": False, "updated": 1735689600,
            "profile": {"real_name": real, "display_name": name, "bot_id": bot_id, "always_active": True},
        })
    return users


def build_channels(per_channel: dict[str, list[dict]]) -> list[dict]:
    """channels.json, members taken from the join messages."""
    out = []
    for name, (id_, purpose, general) in CHANNELS.items():
        members = [m["user"] for m in per_channel[name] if m.get("subtype") == "channel_join"]
        out.append({
            "id": id_, "name": name, "created": 1704096000, "creator": uid("grace"), "is_archived": False,
            "is_general": general, "members": members,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": purpose, "creator": uid("grace"), "last_set": 1704096000},
        })
    return out


def dump(path: Path, obj) -> None:
    """Write obj as indented UTF-8 JSON, the way export files are usually read by people."""
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write(out: Path) -> None:
    """Write the whole workspace under out (hand-written handbook.md and README.md are left alone)."""
    per_channel = build_messages()
    out.mkdir(parents=True, exist_ok=True)
    dump(out / "channels.json", build_channels(per_channel))
    dump(out / "users.json", build_users())
    for name, messages in per_channel.items():
        folder = out / name
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.json"):
            old.unlink()
        by_day: dict[str, list[dict]] = {}
        for m in sorted(messages, key=lambda m: float(m["ts"])):
            day = datetime.fromtimestamp(float(m["ts"]), tz=timezone.utc).strftime("%Y-%m-%d")
            by_day.setdefault(day, []).append(m)
        for day, msgs in by_day.items():
            dump(folder / f"{day}.json", msgs)
    with open(out / "heldout.jsonl", "w", encoding="utf-8") as f:
        for q, a in HELDOUT:
            f.write(json.dumps({"question": q, "answer": a}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "acme-workspace")
