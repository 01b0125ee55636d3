"""Word lists and message templates for synthetic conversations (all invented, all harmless)."""

from __future__ import annotations

from typing import NamedTuple


class Theme(NamedTuple):
    """What one conversation is about, and lines people say about it."""

    phrase: str  # "a cracked blender jar", for summaries
    subject: str
    inbox: str  # the inbox such conversations usually land in
    opening: tuple[str, ...]
    follow_up: tuple[str, ...]
    agent: tuple[str, ...]
    resolution: str
    options: tuple[tuple[str, str], ...]  # quick-reply (id, label) pairs


THEMES = (
    Theme(
        "a damaged item",
        "Damaged item in order {order}",
        "Returns",
        (
            "Hi, my order {order} arrived with a cracked lid.",
            "The blender jar in {order} came broken. What can you do?",
            "Hello, the lamp I ordered ({order}) has a dent on the base.",
        ),
        ("Here is a photo of the damage.", "It was like that when I opened the box."),
        (
            "Sorry to hear that! Could you send a photo?",
            "Thanks, I can see the damage. A replacement is on its way.",
            "I've started a replacement for {order}; you'll get tracking soon.",
        ),
        "sent a replacement",
        (("refund", "Refund"), ("replace", "Send a replacement")),
    ),
    Theme(
        "a late delivery",
        "Where is my order {order}?",
        "Support",
        (
            "My order {order} was due on Monday and still hasn't arrived.",
            "Hi, tracking for {order} hasn't moved in four days.",
        ),
        ("Any update on this?", "The carrier site still says in transit."),
        (
            "Let me check with the carrier for you.",
            "The package is at the {city} hub and should arrive in two days.",
            "Your tracking number is {tracking}.",
        ),
        "confirmed the new delivery date",
        (("wait", "I'll wait"), ("cancel", "Cancel the order")),
    ),
    Theme(
        "a return request",
        "Return for order {order}",
        "Returns",
        (
            "I'd like to return the jacket from {order}, it's too small.",
            "How do I send back {order}? It isn't what I expected.",
        ),
        ("Do I need the original box?", "Great, I'll drop it off this week."),
        (
            "No problem! I've emailed you a prepaid return label.",
            "Once the return arrives we refund within five business days.",
        ),
        "issued a return label",
        (("label", "Email me a label"), ("store", "Return in store")),
    ),
    Theme(
        "a double charge",
        "Charged twice for {order}",
        "Billing",
        (
            "I was charged twice for {order}, ${amount} each time.",
            "My card statement shows two charges for the same order.",
        ),
        ("The second charge is still pending.", "Can you confirm the refund amount?"),
        (
            "I see the duplicate charge and have voided it.",
            "The extra ${amount} will be back on your card in 3-5 days.",
        ),
        "voided the duplicate charge",
        (("refund", "Refund the duplicate"), ("credit", "Store credit")),
    ),
    Theme(
        "account access",
        "Can't log in to my account",
        "Support",
        (
            "I can't log in, the reset email never arrives.",
            "My account says it's locked after too many attempts.",
        ),
        ("Still nothing in my inbox.", "That worked, thank you!"),
        (
            "I've sent a fresh reset link; please check your spam folder too.",
            "Your account is unlocked now.",
        ),
        "unlocked the account",
        (("resend", "Resend the link"), ("call", "Call me")),
    ),
    Theme(
        "a product question",
        "Question about sizing",
        "Sales",
        (
            "Does the trail runner come in half sizes?",
            "Is the walnut desk available in a darker finish?",
        ),
        ("What about the width?", "Perfect, I'll order it today."),
        (
            "Yes, half sizes 6 through 12 are in stock.",
            "It also comes in espresso; here's the product page.",
        ),
        "answered the sizing question",
        (("chat", "Keep chatting"), ("email", "Email me details")),
    ),
    Theme(
        "a subscription change",
        "Change my subscription",
        "Billing",
        (
            "Please pause my coffee subscription for a month.",
            "I want to switch my plan to every other week.",
        ),
        ("Will I still get this week's box?", "Thanks for the quick help."),
        (
            "Done, your next box ships in four weeks.",
            "Your plan is now biweekly starting next Monday.",
        ),
        "updated the subscription",
        (("pause", "Pause"), ("cancel", "Cancel")),
    ),
    Theme(
        "a shipping address change",
        "Update shipping address for {order}",
        "Support",
        (
            "I moved last week, can you change the address on {order}?",
            "Wrong apartment number on {order}, please fix it.",
        ),
        ("The new address is in my profile now.", "Is it too late to change?"),
        (
            "I've updated the address before the order shipped.",
            "Got it, the carrier has the corrected address.",
        ),
        "corrected the shipping address",
        (("update", "Update address"), ("hold", "Hold at depot")),
    ),
    Theme(
        "a promo code",
        "Promo code not working",
        "Sales",
        (
            "The code SPRING15 says it's expired but your email says it's valid.",
            "My welcome discount didn't apply at checkout.",
        ),
        ("I already placed the order.", "Can you apply it manually?"),
        (
            "I've applied the discount and refunded ${amount}.",
            "That code ended yesterday, but I've added a new one to your account.",
        ),
        "applied the discount manually",
        (("apply", "Apply it for me"), ("new", "Send a new code")),
    ),
    Theme(
        "a VIP order",
        "Priority request for {order}",
        "VIP Support",
        (
            "I need {order} by Friday for an event, can you expedite it?",
            "Could you gift-wrap {order} and add a note?",
        ),
        ("Thank you so much.", "Can you confirm once it ships?"),
        (
            "Of course, I've upgraded shipping at no charge.",
            "Gift wrap added; it ships tomorrow morning.",
        ),
        "upgraded the shipping",
        (("expedite", "Expedite"), ("wrap", "Gift wrap")),
    ),
)

SPANISH_CUSTOMER = (
    "Hola, mi pedido {order} llegó dañado.",
    "¿Cuándo llega mi pedido {order}?",
    "Gracias por la ayuda.",
    "Quiero devolver un artículo.",
)
SPANISH_AGENT = (
    "¡Hola! Con gusto le ayudo.",
    "Ya enviamos un reemplazo para {order}.",
    "Su reembolso se procesará en 3-5 días.",
    "¿Hay algo más en que pueda ayudarle?",
)
CUSTOMER_GENERIC = ("Thanks!", "Sounds good.", "Okay, thank you.", "Any update?", "That works.")
AGENT_GENERIC = (
    "Thanks for reaching out, {first}!",
    "Let me look into that for you.",
    "Is there anything else I can help with?",
    "I'll keep an eye on this and follow up.",
    "Happy to help, {first}. Have a great day!",
)
BOT_LINES = ("How would you like us to fix this?", "What would you like to do next?")
NOTES = (
    "Replacement approved by supervisor. Do not refund.",
    "Customer prefers email follow-up.",
    "Checked carrier portal: package held at the {city} hub.",
    "Escalated to the warehouse team, ticket WH-{amount}.",
    "<p>Called the customer back, <b>no answer</b>. Left a voicemail.</p>",
)
VOICE_AI_LINES = (
    "Thanks for calling. How can I help you today?",
    "I can help with that. Can you tell me your order number?",
    "One moment while I connect you with a team member.",
    "Sorry, I didn't catch that. Could you say it again?",
)
ACTIVITIES = (
    ("SURVEY", "NPS survey answered", "Score: {score} - 'Fast shipping'", "SurveyTool"),
    ("EMAIL", "Order {order} shipped", "Your order is on its way. Tracking {tracking}.", "Shopify"),
    ("SMS", "Delivery reminder sent", "Your package arrives today between 2 and 6 pm.", "Notify"),
    (
        "ISSUE",
        "Warranty claim opened",
        "<p>Claim for a faulty charger, order {order}.</p>",
        "Claims",
    ),
    ("SURVEY", "CSAT rating received", "Rating {score} of 10 after chat.", "SurveyTool"),
)
ATTACHMENTS = (
    ("image/jpeg", "photo.jpg"),
    ("image/png", "screenshot.png"),
    ("application/pdf", "receipt.pdf"),
    ("image/heic", "IMG_2041.heic"),
)
TWEETS = ("@shop my order is late", "@shop thanks for the fast reply!", "@shop where is {order}?")
SOCIAL_SHORT = ("Do you ship to Canada?", "Love the new colors!", "Is this back in stock?")
SUPPORT_CITIES = ("Memphis", "Louisville", "Reno", "Allentown")

TOPIC_NAMES = (
    ("Order Returns", None, False),
    ("Damaged Merchandise", 0, False),
    ("Late Delivery", None, False),
    ("Lost Package", 2, False),
    ("Billing", None, False),
    ("Double Charge", 4, False),
    ("Refund Status", 4, False),
    ("Account Access", None, False),
    ("Password Reset", 7, False),
    ("Product Question", None, False),
    ("Sizing", 9, False),
    ("Subscription", None, False),
    ("Cancellation", 11, False),
    ("Address Change", None, False),
    ("Promo Code", None, False),
    ("Holiday 2019", 14, True),
    ("Warranty", None, False),
    ("Feedback", None, False),
    ("Wholesale Inquiry", None, False),
    ("Gift Cards", None, False),
    ("Loyalty Program", None, False),
    ("Exchange", 0, False),
    ("Store Visit", None, True),
    ("VIP Requests", None, False),
)
INBOX_NAMES = (
    "Support",
    "Returns",
    "VIP Support",
    "Billing",
    "Sales",
    "Spanish",
    "Escalations",
    "Social",
    "Voice",
    "Wholesale",
)
AGENT_FIRST = ("Amy", "Ben", "Chloe", "Dev", "Eli", "Gwen", "Hugo", "Iris", "Jin", "Kara", "Leo")
AGENT_LAST = ("Agent", "Boateng", "Castro", "Dunn", "Ekwueme", "Frost", "Garza", "Holm", "Ito")
