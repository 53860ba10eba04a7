"""Dutch-like given and family names for the synthetic population.

Family names are common Dutch surnames (with their tussenvoegsels, e.g. "van den
Berg") plus names common among Dutch residents with a Turkish, Moroccan, Surinamese,
Antillean or other migration background, some with diacritics so that encodings and
normalisation are exercised. Weights are rough relative frequencies chosen for
realism of the mix, not published counts.
"""

from __future__ import annotations

FAMILY_NAMES: tuple[tuple[str, float], ...] = (
    ("de Jong", 86), ("Jansen", 74), ("de Vries", 73), ("van den Berg", 61), ("van Dijk", 59),
    ("Bakker", 58), ("Janssen", 57), ("Visser", 51), ("Smit", 48), ("Meijer", 45),
    ("de Boer", 43), ("Mulder", 41), ("de Groot", 41), ("Bos", 40), ("Vos", 36),
    ("Peters", 36), ("Hendriks", 35), ("van Leeuwen", 34), ("Dekker", 33), ("Brouwer", 32),
    ("de Wit", 31), ("Dijkstra", 31), ("Smits", 30), ("de Graaf", 30), ("van der Meer", 29),
    ("van der Linden", 27), ("Kok", 27), ("Jacobs", 26), ("de Haan", 26), ("Vermeulen", 26),
    ("van den Heuvel", 25), ("van der Veen", 25), ("van den Broek", 24), ("de Bruijn", 24),
    ("de Bruin", 24), ("van der Heijden", 23), ("Schouten", 23), ("van Beek", 23),
    ("Willems", 23), ("van Vliet", 22), ("van de Ven", 22), ("Hoekstra", 22), ("Maas", 21),
    ("Verhoeven", 21), ("Koster", 21), ("van Dam", 21), ("van der Wal", 20), ("Prins", 20),
    ("Blom", 20), ("Huisman", 20), ("Peeters", 19), ("de Jonge", 19), ("Kuipers", 19),
    ("van Veen", 19), ("Post", 18), ("Kuiper", 18), ("Veenstra", 18), ("Kramer", 18),
    ("van den Brink", 18), ("Scholten", 17), ("van Wijk", 17), ("Postma", 17), ("Martens", 17),
    ("Vink", 16), ("de Ruiter", 16), ("Timmermans", 16), ("Groen", 16), ("Gerritsen", 16),
    ("Jonker", 15), ("van Loon", 15), ("Boer", 15), ("van der Velde", 15), ("Willemsen", 15),
    ("Smeets", 15), ("de Lange", 14), ("de Vos", 14), ("Bosch", 14), ("van Dongen", 14),
    ("Schipper", 14), ("de Koning", 14), ("van der Laan", 14), ("Koning", 13),
    ("van der Velden", 13), ("Driessen", 13), ("van Doorn", 13), ("Hermans", 13), ("Evers", 13),
    ("van den Bosch", 13), ("van der Meulen", 13), ("Hofman", 12), ("Bosman", 12),
    ("Wolters", 12), ("Sanders", 12), ("van der Horst", 12), ("Mol", 12), ("Kuijpers", 12),
    ("Molenaar", 12), ("van de Pol", 11), ("de Leeuw", 11), ("Verbeek", 11), ("Brink", 10),
    ("ter Horst", 6), ("in 't Veld", 5), ("van 't Hof", 5), ("op den Kamp", 3), ("Hooijmaijers", 3),
    ("Y\u0131lmaz", 14), ("Kaya", 10), ("Demir", 9), ("Şahin", 7), ("Çelik", 7), ("Öztürk", 7),
    ("Doğan", 6), ("El Amrani", 6), ("Bouzid", 5), ("Benali", 5), ("El Idrissi", 5),
    ("Ouali", 4), ("Ramdin", 4), ("Baldewsingh", 3), ("Martina", 4), ("Nguyen", 4),
    ("Mohan", 3), ("Kowalski", 4), ("Nowak", 4), ("Müller", 3),
)  # fmt: skip

MALE_GIVEN_NAMES: tuple[tuple[str, float], ...] = (
    ("Jan", 40), ("Johannes", 30), ("Cornelis", 25), ("Hendrik", 25), ("Pieter", 25),
    ("Willem", 22), ("Gerrit", 18), ("Jacobus", 18), ("Dirk", 15), ("Kees", 12), ("Henk", 14),
    ("Peter", 20), ("Mark", 18), ("Thomas", 18), ("Bas", 12), ("Tim", 15), ("Jeroen", 15),
    ("Martijn", 15), ("Sander", 14), ("Ruben", 12), ("Daan", 15), ("Sem", 12), ("Lucas", 14),
    ("Levi", 10), ("Finn", 10), ("Noah", 12), ("Bram", 12), ("Lars", 10), ("Jesse", 10),
    ("Joost", 8), ("Wouter", 10), ("Erik", 12), ("Frank", 12), ("Marcel", 10), ("René", 8),
    ("André", 8), ("Theo", 8), ("Gijs", 6), ("Sjoerd", 5), ("Mohamed", 12), ("Ahmed", 8),
    ("Mehmet", 8), ("Youssef", 6), ("Mustafa", 6), ("Emre", 5), ("Rayan", 4), ("Jayden", 5),
    ("Oğuz", 3), ("Piotr", 3), ("Ravi", 3),
)  # fmt: skip

FEMALE_GIVEN_NAMES: tuple[tuple[str, float], ...] = (
    ("Maria", 35), ("Johanna", 28), ("Cornelia", 22), ("Wilhelmina", 15), ("Elisabeth", 18),
    ("Hendrika", 15), ("Geertruida", 8), ("Anna", 22), ("Anneke", 12), ("Ingrid", 12),
    ("Monique", 12), ("Sandra", 14), ("Linda", 14), ("Marieke", 12), ("Esther", 12),
    ("Sanne", 14), ("Lisa", 14), ("Fleur", 10), ("Eva", 14), ("Lotte", 12), ("Femke", 12),
    ("Emma", 16), ("Julia", 14), ("Sophie", 14), ("Tess", 10), ("Mila", 10), ("Zoë", 8),
    ("Noor", 8), ("Chloë", 5), ("Anouk", 10), ("Iris", 10), ("Saskia", 10), ("Petra", 10),
    ("Marja", 8), ("Gerda", 8), ("Ria", 6), ("Els", 8), ("Tineke", 6), ("Hélène", 4),
    ("Fatima", 10), ("Aïcha", 6), ("Zeynep", 6), ("Ayşe", 5), ("Khadija", 5), ("Meryem", 4),
    ("Yasmina", 4), ("Priya", 3), ("Agnieszka", 3), ("Shanice", 3), ("Dewi", 3),
)  # fmt: skip

# Letters that may follow the digits of a PC6 postcode; SA, SD and SS are not issued.
POSTCODE_LETTERS = "ABCDEFGHJKLMNPRSTVWXZ"
HOUSE_NUMBER_ADDITIONS = ("A", "B", "C", "I", "II", "1", "2", "bis", "hs")
TUSSENVOEGSELS = ("van den", "van der", "van de", "van 't", "in 't", "op den", "ter", "van", "de")
