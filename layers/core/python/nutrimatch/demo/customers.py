"""Deterministic synthetic customers and the health-profile inputs a nutrition app would collect from them.

Names come from pools of first and last names of several cultures; a customer's locale leans towards the
matching culture (es-US towards Spanish names, fr-CA towards French ones, ...). Emails are derived from the
name and the customer number, so they are unique, and only ever use the reserved example domains (RFC 2606).

Customer n is drawn from its own random stream, seeded by (seed, n): the same customer whatever `count` and
`start` select it. Health profiles follow rough US adult prevalences (CDC/NHANES orders of magnitude, rising
with age and BMI), so matching benchmarks see a realistic mix of constraints: most people declare no allergy
and no diet, about a third have hypertension, one in ten type 2 diabetes.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

CUSTOMER_COLUMNS = ("external_id", "name", "email", "locale", "status")
EMAIL_DOMAINS = ("example.com", "example.org")


@dataclass(frozen=True)
class _Culture:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


_CULTURES: dict[str, _Culture] = {
    "anglo": _Culture(
        _names(
            "James, Mary, John, Patricia, Robert, Jennifer, Michael, Linda, William, Elizabeth, David, Barbara,"
            " Richard, Susan, Joseph, Jessica, Thomas, Sarah, Christopher, Karen, Daniel, Lisa, Matthew, Nancy,"
            " Anthony, Betty, Mark, Sandra, Donald, Ashley, Steven, Emily, Andrew, Kimberly, Joshua, Michelle,"
            " Kevin, Amanda, Brian, Melissa, George, Deborah, Timothy, Stephanie, Ryan, Rebecca, Jacob, Laura,"
            " Nicholas, Emma, Tyler, Olivia, Ethan, Ava, Noah, Sophia, Liam, Isabella, Mason, Charlotte, Logan,"
            " Amelia, Owen, Evelyn, Caleb, Abigail, Wyatt, Hannah, Grace, Chloe, Zoe, Lily, Oliver, Jack, Harry,"
            " Alfie, Poppy, Freya, Isla, Megan, Rhys, Callum, Eleanor, Imogen, Declan, Siobhan, Fiona, Angus"
        ),
        _names(
            "Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, Thomas, Moore,"
            " Jackson, Martin, Thompson, White, Harris, Clark, Lewis, Robinson, Walker, Young, Allen, King,"
            " Wright, Scott, Hill, Green, Adams, Baker, Nelson, Carter, Mitchell, Roberts, Turner, Phillips,"
            " Campbell, Parker, Evans, Edwards, Collins, Stewart, Morris, Murphy, Cook, Rogers, Morgan, Cooper,"
            " Peterson, Bailey, Reed, Kelly, Howard, Cox, Ward, Richardson, Watson, Brooks, Wood, Bennett, Gray,"
            " Hughes, Price, Sanders, Myers, Long, Ross, Foster, Powell, Jenkins, Perry, Russell, Sullivan, Bell,"
            " Coleman, Butler, Henderson, Barnes, Fisher, Hayes, Graham, Wallace, Hamilton, Ellis, Murray, Ford,"
            " Marshall, Owens, Harrison, O'Brien, O'Connor, McCarthy, MacDonald, Fitzgerald, Quinn, Doyle, Byrne,"
            " Gallagher, Whitaker, Ashworth, Pemberton, Holloway, Thornton, Blackwood, Hartley, Kendall"
        ),
    ),
    "hispanic": _Culture(
        _names(
            "José, Luis, Carlos, Juan, Jorge, Miguel, Alejandro, Diego, Javier, Fernando, Ricardo, Eduardo,"
            " Andrés, Mateo, Santiago, Sebastián, Rafael, Héctor, Raúl, Ignacio, Emilio, María, Guadalupe, Sofía,"
            " Valentina, Camila, Lucía, Isabel, Carmen, Ana, Rosa, Elena, Gabriela, Daniela, Mariana, Ximena,"
            " Paula, Adriana, Alejandra, Beatriz, Catalina, Fernanda, Juana, Leticia, Marisol, Natalia, Verónica,"
            " Yolanda"
        ),
        _names(
            "García, Rodríguez, Martínez, Hernández, López, González, Pérez, Sánchez, Ramírez, Torres, Flores,"
            " Rivera, Gómez, Díaz, Cruz, Morales, Reyes, Gutiérrez, Ortiz, Ramos, Castillo, Jiménez, Vargas,"
            " Romero, Herrera, Medina, Aguilar, Vega, Castro, Mendoza, Ruiz, Álvarez, Fernández, Chávez,"
            " Delgado, Guerrero, Rojas, Navarro, Salazar, Cortés, Domínguez, Peña, Ríos, Soto, Vázquez, Luna,"
            " Molina, Campos, Estrada, Fuentes"
        ),
    ),
    "french": _Culture(
        _names(
            "Jean, Pierre, Louis, Michel, François, Jacques, Philippe, Antoine, Nicolas, Julien, Mathieu,"
            " Olivier, Étienne, Hugo, Théo, Raphaël, Benoît, Yves, Luc, Marie, Camille, Chloé, Léa, Manon,"
            " Juliette, Émilie, Sophie, Isabelle, Nathalie, Geneviève, Sylvie, Catherine, Amélie, Élodie,"
            " Margaux, Océane, Anaïs, Josée, Mélanie"
        ),
        _names(
            "Tremblay, Gagnon, Roy, Côté, Bouchard, Gauthier, Morin, Lavoie, Fortin, Gagné, Ouellet, Pelletier,"
            " Bélanger, Lévesque, Bergeron, Leblanc, Paquette, Girard, Simard, Boucher, Caron, Beaulieu,"
            " Cloutier, Dubois, Poirier, Fournier, Lapointe, Leclerc, Lefebvre, Poulin, Bernard, Moreau,"
            " Laurent, Mercier, Dupont, Lambert, Bonnet, Rousseau, Vincent, Faure, Chevalier, Garnier"
        ),
    ),
    "german": _Culture(
        _names(
            "Lukas, Leon, Finn, Jonas, Paul, Felix, Maximilian, Elias, Tobias, Jan, Stefan, Andreas, Jürgen,"
            " Klaus, Wolfgang, Uwe, Dieter, Matthias, Anna, Lena, Leonie, Lea, Katharina, Sabine, Petra, Ursula,"
            " Monika, Claudia, Julia, Birgit, Annika, Greta, Ida, Mia, Frieda, Henrike"
        ),
        _names(
            "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, Schäfer, Koch,"
            " Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, Braun, Krüger, Hofmann,"
            " Hartmann, Lange, Schmitt, Werner, Krause, Meier, Lehmann, Köhler, Herrmann, König, Walter, Mayer,"
            " Huber, Kaiser, Fuchs, Peters, Lang, Scholz, Möller, Weiß, Jung, Hahn, Vogel, Friedrich, Keller,"
            " Günther, Frank"
        ),
    ),
    "italian": _Culture(
        _names(
            "Giuseppe, Marco, Luca, Giovanni, Francesco, Alessandro, Matteo, Lorenzo, Davide, Giulia, Chiara,"
            " Francesca, Alessia, Sara, Martina, Federica, Elisa, Silvia"
        ),
        _names(
            "Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Greco, Bruno, Gallo,"
            " Conti, De Luca, Costa, Giordano, Mancini, Rizzo, Lombardi, Moretti"
        ),
    ),
    "south_asian": _Culture(
        _names(
            "Aarav, Vivaan, Aditya, Arjun, Rohan, Rahul, Vikram, Sanjay, Amit, Raj, Ishaan, Karan, Nikhil,"
            " Suresh, Ravi, Farhan, Imran, Priya, Ananya, Aditi, Kavya, Diya, Neha, Pooja, Sunita, Lakshmi,"
            " Meera, Anjali, Deepika, Ayesha"
        ),
        _names(
            "Patel, Shah, Sharma, Singh, Kumar, Gupta, Reddy, Iyer, Nair, Rao, Desai, Mehta, Joshi, Chopra,"
            " Kapoor, Malhotra, Bhat, Menon, Pillai, Chatterjee, Banerjee, Mukherjee, Das, Bose, Khan, Hussain,"
            " Chaudhry, Ahmed, Siddiqui, Qureshi"
        ),
    ),
    "east_asian": _Culture(
        _names(
            "Wei, Jing, Hui, Ming, Xiao, Yan, Jun, Lei, Mei, Hiroshi, Takeshi, Kenji, Yuki, Haruto, Sakura, Yui,"
            " Aoi, Ren, Sora, Min-jun, Seo-yeon, Ji-woo, Ha-eun, Jae-won, Soo-ah, Minh, Linh, Thanh, Huong, Anh,"
            " Duc, Bao, Lan, Mai, Tuan"
        ),
        _names(
            "Wang, Li, Zhang, Liu, Chen, Yang, Huang, Zhao, Wu, Zhou, Xu, Sun, Ma, Zhu, Hu, Lin, Guo, Kim, Lee,"
            " Park, Choi, Jung, Kang, Cho, Yoon, Jang, Sato, Suzuki, Takahashi, Tanaka, Watanabe, Ito, Yamamoto,"
            " Nakamura, Kobayashi, Nguyen, Tran, Le, Pham, Hoang, Phan, Vu, Dang, Bui, Do"
        ),
    ),
    "african": _Culture(
        _names(
            "Chinedu, Ngozi, Emeka, Adaeze, Oluwaseun, Funmilayo, Kwame, Ama, Kofi, Akosua, Yaw, Abena, Tunde,"
            " Folake, Chiamaka, Obinna, Ifeoma, Babajide, Amara, Zainab, Musa, Fatoumata, Moussa, Aminata, Thabo,"
            " Lindiwe, Sipho, Nomvula, Kamau, Wanjiru"
        ),
        _names(
            "Okafor, Okonkwo, Adeyemi, Ogunleye, Eze, Nwosu, Balogun, Adebayo, Mensah, Asante, Owusu, Boateng,"
            " Appiah, Osei, Diallo, Traoré, Keita, Ndiaye, Dlamini, Nkosi, Khumalo, Otieno, Mwangi, Achieng,"
            " Abiola, Chukwu, Obi, Adjei, Sesay, Bangura"
        ),
    ),
    "arabic": _Culture(
        _names(
            "Mohammed, Ahmed, Omar, Ali, Youssef, Karim, Hassan, Khalid, Tariq, Samir, Fatima, Aisha, Layla,"
            " Mariam, Noor, Yasmin, Salma, Huda, Rania, Leila"
        ),
        _names(
            "Haddad, Khoury, Saleh, Nasser, Mansour, Hamdan, Aziz, Rahman, Farouk, Hakim, Ibrahim, Suleiman,"
            " Abboud, Darwish, Najjar, Sabbagh, Karam, Bakr, Othman, Yousef"
        ),
    ),
    "slavic": _Culture(
        _names(
            "Aleksandr, Dmitri, Ivan, Sergei, Nikolai, Piotr, Tomasz, Marek, Katarzyna, Agnieszka, Olga,"
            " Natalia, Anastasia, Irina, Svetlana, Magdalena"
        ),
        _names(
            "Ivanov, Petrov, Smirnov, Kowalski, Nowak, Wiśniewski, Wójcik, Kowalczyk, Novák, Horvat, Kovač,"
            " Popescu, Ionescu, Popov, Volkov, Zielinski"
        ),
    ),
}

LAST_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(name for culture in _CULTURES.values() for name in culture.last_names)
)
"""Every last name of every culture, without repeats (the catalog uses them for family brands and farms)."""

# Share of each locale among customers, and the mix of name cultures within it.
_LOCALES: tuple[tuple[str, float, dict[str, float]], ...] = (
    (
        "en-US",
        0.78,
        {
            "anglo": 0.45,
            "hispanic": 0.16,
            "african": 0.08,
            "east_asian": 0.08,
            "south_asian": 0.06,
            "italian": 0.05,
            "german": 0.04,
            "french": 0.03,
            "arabic": 0.03,
            "slavic": 0.02,
        },
    ),
    ("es-US", 0.10, {"hispanic": 0.85, "anglo": 0.15}),
    ("fr-CA", 0.05, {"french": 0.8, "anglo": 0.1, "arabic": 0.05, "african": 0.05}),
    ("en-GB", 0.04, {"anglo": 0.65, "south_asian": 0.15, "african": 0.08, "slavic": 0.06, "italian": 0.06}),
    ("de-DE", 0.03, {"german": 0.8, "slavic": 0.08, "arabic": 0.07, "italian": 0.05}),
)
_SAME_CULTURE_SURNAME = 0.85
"""The rest of the time the last name comes from any culture: families and names mix."""

_NOT_EMAIL_CHARACTERS = re.compile(r"[^a-z]+")


def _email_part(name: str) -> str:
    """Lower-case ASCII letters only: "Müller" → "muller", "O'Brien" → "obrien", "Min-jun" → "minjun"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NOT_EMAIL_CHARACTERS.sub("", ascii_name.lower())


def _pick_weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def generate_customers(count: int, *, seed: int = 11, start: int = 0) -> Iterator[dict[str, str]]:
    """`count` customers numbered from `start` + 1 (external_id "CUST-000001", ...), in CUSTOMER_COLUMNS order.

    The number also ends the email ("maria.garcia42@example.com"), which keeps every email unique.
    """
    if count < 0 or start < 0:
        raise ValueError(f"count and start must not be negative (got {count}, {start})")
    locale_names = [locale for locale, _, _ in _LOCALES]
    locale_shares = [share for _, share, _ in _LOCALES]
    cultures_of = {locale: cultures for locale, _, cultures in _LOCALES}
    all_cultures = list(_CULTURES.values())
    for number in range(start + 1, start + count + 1):
        rng = random.Random(f"customer:{seed}:{number}")  # noqa: S311 - demo data, not secrets
        locale = rng.choices(locale_names, weights=locale_shares)[0]
        culture = _CULTURES[_pick_weighted(rng, cultures_of[locale])]
        first = rng.choice(culture.first_names)
        surname_culture = culture if rng.random() < _SAME_CULTURE_SURNAME else rng.choice(all_cultures)
        last = rng.choice(surname_culture.last_names)
        first_part, last_part = _email_part(first), _email_part(last)
        local_part = rng.choice(
            (f"{first_part}.{last_part}", f"{first_part}{last_part}", f"{first_part[0]}.{last_part}",
             f"{first_part}_{last_part}", f"{last_part}.{first_part}")
        )
        domain = EMAIL_DOMAINS[0] if rng.random() < 0.7 else EMAIL_DOMAINS[1]
        yield {
            "external_id": f"CUST-{number:06d}",
            "name": f"{first} {last}",
            "email": f"{local_part}{number}@{domain}",
            "locale": locale,
            "status": "active",
        }


# Adult age brackets (years) and their share, roughly the US adult population.
_AGE_BRACKETS = ((18, 29, 0.20), (30, 39, 0.18), (40, 49, 0.17), (50, 59, 0.17), (60, 69, 0.15), (70, 79, 0.09),
                 (80, 90, 0.04))
_HEIGHT_CM = {"female": (162.5, 6.8), "male": (176.3, 7.4)}
_MEDIAN_BMI = 27.5
_ACTIVITY_LEVELS = {"sedentary": 0.30, "light": 0.30, "moderate": 0.25, "active": 0.11, "very_active": 0.04}
_FOOD_ALLERGIES = {
    "milk": 0.20,
    "peanuts": 0.20,
    "crustacean_shellfish": 0.20,
    "tree_nuts": 0.15,
    "eggs": 0.07,
    "fish": 0.07,
    "wheat": 0.04,
    "soybeans": 0.04,
    "sesame": 0.03,
}
_SODIUM_SENSITIVE = frozenset({"hypertension", "chronic_kidney_disease", "heart_disease"})


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _conditions(rng: random.Random, age: int, bmi: float) -> set[str]:
    """Declared conditions; prevalence rises with age (age_factor 0 at 18, 1 at 68) and with obesity."""
    age_factor = _clamp((age - 18) / 50, 0.0, 1.4)
    obesity = 1.5 if bmi >= 30 else 1.0
    conditions: set[str] = set()
    if rng.random() < (0.06 + 0.40 * age_factor**1.2) * obesity:
        conditions.add("hypertension")
    if rng.random() < (0.02 + 0.15 * age_factor) * obesity:
        conditions.add("diabetes_type_2")
    elif rng.random() < 0.06 + 0.12 * age_factor:
        conditions.add("prediabetes")
    if rng.random() < 0.05 + 0.28 * age_factor:
        conditions.add("high_cholesterol")
    if rng.random() < 0.01 + 0.10 * age_factor**2:
        conditions.add("heart_disease")
    kidney_risk = 2.0 if conditions & {"hypertension", "diabetes_type_2"} else 1.0
    if rng.random() < (0.005 + 0.05 * age_factor**2) * kidney_risk:
        conditions.add("chronic_kidney_disease")
    if rng.random() < 0.01:
        conditions.add("celiac_disease")
    if rng.random() < (0.55 if bmi >= 30 else 0.30 if bmi >= 25 else 0.03):
        conditions.add("weight_loss")
    return conditions


def _avoid_allergens(rng: random.Random, conditions: set[str]) -> set[str]:
    """Most people avoid nothing; about 13% one allergen and 4% two. Celiac disease means avoiding gluten."""
    roll = rng.random()
    allergy_count = 2 if roll < 0.04 else 1 if roll < 0.17 else 0
    allergens: set[str] = set()
    while len(allergens) < allergy_count:
        allergens.add(_pick_weighted(rng, _FOOD_ALLERGIES))
    if "celiac_disease" in conditions:
        allergens.add("gluten")
    return allergens


def _diet_goals(rng: random.Random, conditions: set[str]) -> set[str]:
    goals: set[str] = set()
    roll = rng.random()
    if roll < 0.03:
        goals.add("vegan")
    elif roll < 0.08:
        goals.add("vegetarian")
    elif roll < 0.11:
        goals.add("keto")  # never with vegan: a combination almost nobody follows
    if "celiac_disease" in conditions or rng.random() < 0.02:
        goals.add("gluten_free")
    if rng.random() < (0.40 if conditions & _SODIUM_SENSITIVE else 0.03):
        goals.add("low_sodium")
    roll = rng.random()
    if roll < 0.03:
        goals.add("halal")
    elif roll < 0.05:
        goals.add("kosher")
    return goals


def generate_health_profile(rng_or_seed: random.Random | int) -> dict[str, object]:
    """Plausible inputs of a HealthProfile for one adult: measures, conditions, allergens and diet goals.

    Lists are sorted, so the same seed always gives the same dict (and the same JSON).
    """
    rng = rng_or_seed if isinstance(rng_or_seed, random.Random) else random.Random(rng_or_seed)  # noqa: S311  # noqa: S311
    sex = rng.choice(("female", "male"))
    low, high, _ = rng.choices(_AGE_BRACKETS, weights=[share for _, _, share in _AGE_BRACKETS])[0]
    age = rng.randint(low, high)
    mean_height, height_sd = _HEIGHT_CM[sex]
    height_cm = round(_clamp(rng.gauss(mean_height, height_sd), 140.0, 205.0), 1)
    bmi = _clamp(rng.lognormvariate(0.0, 0.18) * _MEDIAN_BMI, 16.5, 55.0)
    weight_kg = round(bmi * (height_cm / 100) ** 2, 1)
    conditions = _conditions(rng, age, bmi)
    return {
        "height_cm": height_cm,
        "weight_kg": weight_kg,
        "age": age,
        "sex": sex,
        "activity_level": _pick_weighted(rng, _ACTIVITY_LEVELS),
        "conditions": sorted(conditions),
        "avoid_allergens": sorted(_avoid_allergens(rng, conditions)),
        "diet_goals": sorted(_diet_goals(rng, conditions)),
    }

